package protocols

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kreide/config"
	"kreide/store"
	"kreide/store/storetest"
)

// serverTestConfig is the demo config on free loopback ports, with its data dir in dir.
func serverTestConfig(dir *store.Directory) *config.Config {
	cfg := config.Default()
	cfg.DataDir = dir.Dir()
	cfg.Domains = []string{"example.org"}
	cfg.DemoAccount = ""
	cfg.Listen = config.Listen{
		IMAP:        "127.0.0.1:0",
		IMAPS:       "127.0.0.1:0",
		SMTP:        "127.0.0.1:0",
		Submission:  "127.0.0.1:0",
		Submissions: "127.0.0.1:0",
		HTTPS:       "127.0.0.1:0",
	}
	return cfg
}

// echoServer is a fake frontend: it answers each line with the same line.
type echoServer struct {
	mu     sync.Mutex
	lns    []net.Listener
	conns  map[net.Conn]bool
	closed atomic.Bool
}

func (e *echoServer) serve(ln net.Listener) error {
	e.mu.Lock()
	e.lns = append(e.lns, ln)
	e.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		e.mu.Lock()
		e.conns[c] = true
		e.mu.Unlock()
		go func() {
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				io.WriteString(c, line)
			}
		}()
	}
}

func (e *echoServer) Close() error {
	e.closed.Store(true)
	e.mu.Lock()
	defer e.mu.Unlock()
	for c := range e.conns {
		c.Close()
	}
	return nil
}

func echoFrontend(e *echoServer, keys ...string) frontend {
	return frontend{name: "echo", keys: keys, start: func(_ *env, lns map[string]net.Listener, serve func(string, func() error)) io.Closer {
		e.conns = map[net.Conn]bool{}
		for k, ln := range lns {
			serve(k, func() error { return e.serve(ln) })
		}
		return e
	}}
}

func echoRoundTrip(t *testing.T, addr net.Addr) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "hello\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "hello\n" {
		t.Fatalf("echo through %s: %q %v", addr, line, err)
	}
}

func TestStartStopEcho(t *testing.T) {
	dir := storetest.Open(t)
	cfg := serverTestConfig(dir)
	fe := &echoServer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := start(ctx, cfg, dir, nil, []frontend{echoFrontend(fe, "listen.imap", "listen.smtp")})
	if err != nil {
		t.Fatal(err)
	}
	imapAddr, smtpAddr := s.Addr("listen.imap"), s.Addr("listen.smtp")
	if imapAddr == nil || smtpAddr == nil {
		t.Fatalf("listeners: imap %v, smtp %v", imapAddr, smtpAddr)
	}
	// Keys without a frontend are not opened.
	for _, k := range []string{"listen.imaps", "listen.submission", "listen.https"} {
		if a := s.Addr(k); a != nil {
			t.Errorf("%s opened at %v without a frontend", k, a)
		}
	}
	echoRoundTrip(t, imapAddr)
	echoRoundTrip(t, smtpAddr)

	// An open session does not keep Serve from stopping.
	idle, err := net.Dial("tcp", imapAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	cancel()
	waited := make(chan error, 1)
	go func() { waited <- s.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("Wait after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop within 10s of cancel")
	}
	if !fe.closed.Load() {
		t.Error("frontend not closed")
	}
	for _, a := range []net.Addr{imapAddr, smtpAddr} {
		if c, err := net.DialTimeout("tcp", a.String(), time.Second); err == nil {
			c.Close()
			t.Errorf("%v still accepts connections after stop", a)
		}
	}
}

// Serve with the real frontends of this build starts and stops on cancel.
func TestServeStartsAndStops(t *testing.T) {
	dir := storetest.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, serverTestConfig(dir), dir, nil) }()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Serve returned before cancel: %v", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return within 20s of cancel")
	}
}

func TestBusyPort(t *testing.T) {
	dir := storetest.Open(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	// A port that is free now, for a listener opened before the busy one.
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()

	cfg := serverTestConfig(dir)
	cfg.Listen.IMAP = freeAddr
	cfg.Listen.Submission = busy.Addr().String()
	fe := &echoServer{}
	_, err = start(context.Background(), cfg, dir, nil, []frontend{echoFrontend(fe, "listen.imap", "listen.submission")})
	want := fmt.Sprintf("listen.submission %s: address already in use", busy.Addr())
	if err == nil || err.Error() != want {
		t.Fatalf("busy port: error %v, want %q", err, want)
	}
	// Nothing stays open: the listener opened before the busy one is closed.
	again, err := net.Listen("tcp", freeAddr)
	if err != nil {
		t.Fatalf("listen.imap %s still held after the failed start: %v", freeAddr, err)
	}
	again.Close()

	// Serve with the real frontends reports the same way, when this build
	// serves IMAP.
	if Served("listen.imap") {
		cfg := serverTestConfig(dir)
		cfg.Listen.IMAP = busy.Addr().String()
		err := Serve(context.Background(), cfg, dir, nil)
		if want := fmt.Sprintf("listen.imap %s: address already in use", busy.Addr()); err == nil || err.Error() != want {
			t.Fatalf("Serve on a busy port: %v, want %q", err, want)
		}
	}
}

// A frontend whose serve loop fails stops the whole server with its error.
func TestFrontendFailure(t *testing.T) {
	dir := storetest.Open(t)
	boom := errors.New("boom")
	other := &echoServer{}
	failing := frontend{name: "failing", keys: []string{"listen.imap"}, start: func(_ *env, lns map[string]net.Listener, serve func(string, func() error)) io.Closer {
		serve("listen.imap", func() error { return boom })
		return io.NopCloser(nil)
	}}
	s, err := start(context.Background(), serverTestConfig(dir), dir, nil, []frontend{failing, echoFrontend(other, "listen.smtp")})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err := <-done:
		if !errors.Is(err, boom) || err.Error() != "listen.imap: boom" {
			t.Fatalf("Wait: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a failed frontend did not stop the server")
	}
	if !other.closed.Load() {
		t.Error("the other frontend was not closed")
	}
}

func TestInvalidConfig(t *testing.T) {
	dir := storetest.Open(t)
	cfg := serverTestConfig(dir)
	cfg.Listen.IMAP = "127.0.0.1:99999"
	if _, err := Start(context.Background(), cfg, dir, nil); err == nil {
		t.Fatal("Start accepted an invalid port")
	}
}
