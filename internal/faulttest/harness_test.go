package faulttest

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"kreide/store"
	"kreide/store/storetest"
)

// kreideBin is the kreide binary, built once in TestMain.
var kreideBin string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "kreide-faulttest")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		kreideBin = filepath.Join(dir, "kreide")
		build := exec.Command("go", "build", "-o", kreideBin, "kreide/cmd/kreide")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building kreide:", err)
			return 1
		}
		return m.Run()
	}())
}

const (
	user, pass = "anna@school.test", "anna password 1"
	domain     = "school.test"
)

// site is a data dir, a config for it with fixed loopback ports (so that
// clients find the server again after a restart), and the running server.
type site struct {
	t                 testing.TB
	dataDir, cfg      string
	imap, smtp, https string // addresses
	proc              *proc
}

// newSite makes the data dir with one account (cheap Argon2 parameters: they
// are stored per credential, so serve uses them too) and the config.
func newSite(t testing.TB, dataDir string) *site {
	t.Helper()
	d, err := store.Open(dataDir, storetest.Options())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.AddDomain(ctx, domain); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateAccount(ctx, user, pass); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 3)
	s := &site{t: t, dataDir: dataDir, imap: ports[0], smtp: ports[1], https: ports[2]}
	s.cfg = filepath.Join(t.TempDir(), "kreide.toml")
	cfg := fmt.Sprintf(`hostname = "localhost"
domains = [%q]
data_dir = %q
demo_account = ""

[listen]
imap = %q
imaps = ""
smtp = ""
submission = %q
submissions = ""
https = %q

[tls]
self_signed = true

[limits]
default_quota = "1 GiB"
`, domain, dataDir, s.imap, s.smtp, s.https)
	if err := os.WriteFile(s.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

func freePorts(t testing.TB, n int) []string {
	var out []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// withStore opens the data dir (the server must be stopped) as the user.
func (s *site) withStore(fn func(a *store.Account)) {
	s.t.Helper()
	d, err := store.Open(s.dataDir, storetest.Options())
	if err != nil {
		s.t.Fatal(err)
	}
	defer d.Close()
	a, err := d.Login(context.Background(), user, pass, store.ScopeIMAP)
	if err != nil {
		s.t.Fatal(err)
	}
	defer a.Close()
	fn(a)
}

// verify runs store.Verify; the server must be stopped.
func (s *site) verify() {
	s.t.Helper()
	if err := store.Verify(context.Background(), s.dataDir); err != nil {
		s.t.Fatalf("store.Verify after the crash: %v\nserver log:\n%s", err, s.proc.log())
	}
}

// proc is a running `kreide serve`.
type proc struct {
	cmd    *exec.Cmd
	stderr string
	exited chan error
}

func (p *proc) log() string {
	if p == nil {
		return ""
	}
	b, _ := os.ReadFile(p.stderr)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// start runs kreide serve and waits until it says it is running.
func (s *site) start() {
	s.t.Helper()
	p := &proc{stderr: filepath.Join(s.t.TempDir(), "stderr"), exited: make(chan error, 1)}
	errf, err := os.Create(p.stderr)
	if err != nil {
		s.t.Fatal(err)
	}
	defer errf.Close()
	p.cmd = exec.Command(kreideBin, "serve", "-config", s.cfg)
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, errf
	if err := p.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	s.proc = p
	s.t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	deadline := time.After(30 * time.Second)
	for {
		if strings.Contains(p.log(), "kreide is running") {
			return
		}
		select {
		case err := <-p.exited:
			s.t.Fatalf("kreide serve exited: %v\n%s", err, p.log())
		case <-deadline:
			s.t.Fatalf("kreide serve not ready after 30s\n%s", p.log())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// kill ends the server with SIGKILL: no cleanup of any kind runs.
func (s *site) kill() {
	s.t.Helper()
	s.proc.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-s.proc.exited:
	case <-time.After(10 * time.Second):
		s.t.Fatal("kreide serve did not die after SIGKILL")
	}
}

// stop ends the server with SIGTERM and waits for a clean exit.
func (s *site) stop() {
	s.t.Helper()
	s.proc.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.proc.exited:
		if err != nil {
			s.t.Fatalf("kreide serve after SIGTERM: %v\n%s", err, s.proc.log())
		}
	case <-time.After(30 * time.Second):
		s.t.Fatal("kreide serve did not stop within 30s of SIGTERM")
	}
}

// httpClient talks to the self-signed HTTPS listener.
func httpClient() *http.Client {
	return &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
}

// dav sends one authenticated request and returns the status (0 if the
// request failed on the wire) and the body.
func (s *site) dav(c *http.Client, method, path string, body []byte, hdr ...string) (int, []byte) {
	req, err := http.NewRequest(method, "https://"+s.https+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.SetBasicAuth(user, pass)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil
	}
	return resp.StatusCode, b
}

// content is the deterministic content of the item id, size bytes long,
// in CRLF lines (a message body or a file).
func content(id string, size int) []byte {
	var b bytes.Buffer
	for n := 0; b.Len() < size; n++ {
		fmt.Fprintf(&b, "%s line %06d ........................................................\r\n", id, n)
	}
	return b.Bytes()
}

// message is a whole message whose Subject is id.
func message(id string, size int) []byte {
	return append([]byte(fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@school.test>\r\n\r\n", user, user, id, id)), content(id, size)...)
}

// sizeOf varies sizes around the 64 KiB line between inline records and
// blob files.
func sizeOf(i int) int {
	if i%2 == 0 {
		return 3 << 10
	}
	return 150 << 10
}
