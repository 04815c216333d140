package mail

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// A server under test runs as a child process with its config and data in a
// temporary directory, on loopback ports picked free at start.

// proc is a running server process.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	err     error // of Wait, once exited is closed
	// stopCmd, if set, stops the server (instead of SIGTERM).
	stopCmd []string
}

// startProc starts cmd with its output appended to logPath.
func startProc(name string, cmd *exec.Cmd, logPath string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and waits; after 20 s it kills the process group.
func (p *proc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	if p.stopCmd != nil {
		exec.Command(p.stopCmd[0], p.stopCmd[1:]...).Run()
	} else {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.exited
	}
}

// logTail is the end of the process's log, for error messages.
func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// waitGreeting waits until addr accepts a connection and greets with a line
// starting with prefix ("* OK", "220").
func (p *proc) waitGreeting(ctx context.Context, addr, prefix string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil && strings.HasPrefix(line, prefix) {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited (%v):\n%s", p.name, p.err, p.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not answer on %s:\n%s", p.name, addr, p.logTail())
		}
	}
}

// freePorts returns n loopback addresses with ports that were free a moment
// ago.
func freePorts(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// findProgram looks in PATH and in the sbin directories, which a normal
// user's PATH often lacks.
func findProgram(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// --- kreide ---

type kreideServer struct {
	*proc
	bin, config        string
	imapAddr, smtpAddr string
}

// buildKreide builds ./cmd/kreide of this module into dir.
func buildKreide(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run the benchmarks inside the kreide module")
	}
	bin := filepath.Join(dir, "kreide")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/kreide")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/kreide: %v\n%s", err, out)
	}
	return bin, nil
}

// startKreide builds kreide, writes a config for dir (loopback, plain IMAP
// and SMTP on free ports, every other listener off), creates the accounts
// with `kreide user add` and starts `kreide serve` (with resolvConf as its
// /etc/resolv.conf, if not "").
func startKreide(ctx context.Context, dir string, users []string, password, resolvConf string) (*kreideServer, error) {
	bin, err := buildKreide(ctx, dir)
	if err != nil {
		return nil, err
	}
	addrs, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	k := &kreideServer{bin: bin, config: filepath.Join(dir, "kreide.toml"), imapAddr: addrs[0], smtpAddr: addrs[1]}
	// max_conns_per_ip is raised as for a school behind one NAT address:
	// every benchmark client comes from 127.0.0.1.
	cfg := fmt.Sprintf(`hostname = "mail.bench.example"
domains = [%q]
data_dir = %q
demo_account = ""

[listen]
imap = %q
imaps = ""
smtp = %q
submission = ""
submissions = ""
https = ""
admin = ""

[tls]
self_signed = true

[auth]
allow_plaintext = "loopback"

[limits]
max_conns_per_ip = 1000
default_quota = "20 GiB"
`, benchDomain, filepath.Join(dir, "data"), k.imapAddr, k.smtpAddr)
	if err := os.WriteFile(k.config, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	serve := func() error {
		cmd := exec.Command(bin, "serve", "-config", k.config)
		if resolvConf != "" {
			if cmd, err = withResolvConf(cmd, resolvConf); err != nil {
				return err
			}
		}
		k.proc, err = startProc("kreide", cmd, filepath.Join(dir, "kreide.log"))
		if err != nil {
			return err
		}
		if err := k.waitGreeting(ctx, k.imapAddr, "* OK"); err != nil {
			k.stop()
			return err
		}
		return nil
	}
	// The first start makes the data dir. The accounts are then added
	// while serve is stopped (`kreide user add` opens the data dir
	// itself), so that the Argon2id runs of creating them (64 MiB each)
	// are not in the memory of the server measured afterwards.
	if err := serve(); err != nil {
		return nil, err
	}
	k.stop()
	for _, u := range users {
		cmd := exec.CommandContext(ctx, bin, "user", "add", u, "-config", k.config)
		cmd.Stdin = strings.NewReader(password + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("kreide user add %s: %v\n%s", u, err, out)
		}
	}
	if err := serve(); err != nil {
		return nil, err
	}
	return k, nil
}
