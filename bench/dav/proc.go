// Package dav benchmarks kreide's CalDAV and WebDAV frontends against
// Radicale and Apache mod_dav, and kreide's behaviour with a school's number
// of accounts (start-up time, idle memory, thousands of IDLE connections).
// Every server runs as a child process of the benchmark on loopback high
// ports, with its configuration and data in a temporary directory, over TLS
// with a self-signed certificate. See README.md, "Benchmarks".
package dav

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"kreide/bench/benchkit"
)

// logf writes one progress line to o.Log.
func logf(o benchkit.Options, format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, "  "+format+"\n", args...)
	}
}

// scaled is n, or a tenth of it with -quick.
func scaled(o benchkit.Options, n int) int {
	if o.Quick {
		return max(n/10, 1)
	}
	return n
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// freePorts returns n distinct free ports.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// proc is a server running as a child process.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *os.File
	done chan struct{}
	err  error
}

// startProc runs args[0] with its output in logPath. The process gets its
// own process group, so that stop reaches its children (Apache's workers).
func startProc(name, logPath string, env []string, args ...string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, out: lf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group and waits; after 20 s it kills.
func (p *proc) stop() {
	if p == nil || p.exited() {
		return
	}
	syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

// tail is the end of the process's log, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	s := strings.TrimSpace(string(b))
	if len(s) > 1500 {
		s = "..." + s[len(s)-1500:]
	}
	return s
}

// waitAccept waits until every address accepts TCP connections, the process
// has died, or the timeout passes.
func waitAccept(ctx context.Context, p *proc, logPath string, timeout time.Duration, addrs ...string) error {
	deadline := time.Now().Add(timeout)
	for _, a := range addrs {
		for {
			c, err := net.DialTimeout("tcp", a, 100*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			if p.exited() {
				return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, tail(logPath))
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s does not accept on %s after %v\n%s", p.name, a, timeout, tail(logPath))
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	return nil
}

// rssWatch samples RSS until Stop and keeps the peak: benchkit.WatchRSS for a
// single process, a process-tree sampler for Apache (whose workers are
// children that come and go).
type rssWatch struct {
	single *benchkit.RSS
	stopc  chan struct{}
	done   chan struct{}
	peak   int64
	pss    int64 // peak of the summed proportional set size (tree only)
}

func watch(pid int, tree bool) *rssWatch {
	if !tree {
		return &rssWatch{single: benchkit.WatchRSS(pid)}
	}
	w := &rssWatch{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			var rss, pss int64
			for _, p := range benchkit.ProcessTree(pid) {
				rss += benchkit.ProcessRSS(p)
				pss += benchkit.ProcessPSS(p)
			}
			w.peak, w.pss = max(w.peak, rss), max(w.pss, pss)
			select {
			case <-w.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *rssWatch) Stop() int64 {
	if w.single != nil {
		return w.single.Stop()
	}
	close(w.stopc)
	<-w.done
	return w.peak
}

// procMem is the memory of one process from /proc/PID/status, in bytes.
type procMem struct{ RSS, Anon, File int64 }

func readProcMem(pid int) procMem {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMem{}
	}
	var m procMem
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			m.RSS = kb * 1024
		case "RssAnon:":
			m.Anon = kb * 1024
		case "RssFile:":
			m.File = kb * 1024
		}
	}
	return m
}

// moduleRoot finds the directory of kreide's go.mod, from the working
// directory upwards.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(b)), "module kreide") {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("run the benchmark inside kreide's module (go.mod not found)")
		}
		dir = up
	}
}

var buildMu sync.Mutex

// buildKreide builds ./cmd/kreide into dir and returns the binary's path.
func buildKreide(ctx context.Context, dir string) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kreide")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/kreide")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/kreide: %v\n%s", err, out)
	}
	return bin, nil
}

// drain reads and discards a response body.
func drain(r io.ReadCloser) {
	io.Copy(io.Discard, r)
	r.Close()
}
