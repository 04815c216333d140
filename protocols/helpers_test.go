package protocols

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"kreide/config"
	"kreide/protocols/dav/caldav"
	"kreide/protocols/dav/davauth"
	"kreide/protocols/dav/webdav"
	"kreide/store"
	"kreide/store/storetest"
)

// liveServer is protocols.Start with the real frontends over a temp store,
// plus the DAV handlers on loopback (davURL).
type liveServer struct {
	t      testing.TB
	dir    *store.Directory
	srv    *Server
	davURL string // http(s)://127.0.0.1:port, /files/ (WebDAV) and /dav/ (CalDAV, CardDAV)
	davTLS bool
}

func testLogger() *slog.Logger {
	if testing.Verbose() && os.Getenv("KREIDE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

// startLive starts the real server. The connection limit per address is
// raised: every test client comes from 127.0.0.1.
func startLive(t testing.TB, dir *store.Directory, tweak ...func(*config.Config)) *liveServer {
	t.Helper()
	cfg := serverTestConfig(dir)
	cfg.Limits.MaxConnsPerIP = 2000
	for _, f := range tweak {
		f(cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, cfg, dir, testLogger())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		s.Wait()
	})
	ls := &liveServer{t: t, dir: dir, srv: s}
	if a := s.Addr("listen.https"); a != nil {
		// This build serves DAV itself.
		ls.davURL, ls.davTLS = "https://"+a.String(), true
	} else {
		ls.davURL = mountDAV(t, dir)
	}
	return ls
}

// mountDAV serves WebDAV at /files/ and CalDAV/CardDAV at /dav/ behind
// davauth.Middleware on loopback, as the HTTPS frontend will.
func mountDAV(t testing.TB, dir *store.Directory) string {
	mw := davauth.Middleware(davauth.Options{Dir: dir, AllowPlaintext: davauth.IsLoopback})
	mux := http.NewServeMux()
	mux.Handle("/files/", mw(webdav.NewHandler(webdav.Options{Prefix: "/files/", Logger: testLogger()})))
	mux.Handle("/dav/", mw(caldav.NewHandler(caldav.Options{Prefix: "/dav/", Logger: testLogger()})))
	hs := httptest.NewUnstartedServer(mux)
	hs.Config.ReadHeaderTimeout = 10 * time.Second
	hs.Start()
	t.Cleanup(hs.Close)
	return hs.URL
}

func (ls *liveServer) addr(key string) string {
	ls.t.Helper()
	a := ls.srv.Addr(key)
	if a == nil {
		ls.t.Fatalf("%s is not served", key)
	}
	return a.String()
}

// httpClient does not follow redirects: tests judge the first answer.
func (ls *liveServer) httpClient() *http.Client { return httpClientFrom("") }

// httpClientFrom connects from the loopback address from ("": any).
func httpClientFrom(from string) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:     d.DialContext,
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

var loopbackN atomic.Uint32

// otherLoopback returns a loopback address not used before by this test
// binary (127.0.1.1, 127.0.1.2, ...): failed logins from it do not slow down
// other tests' clients (the store limits failures per client address).
func otherLoopback() string {
	n := loopbackN.Add(1)
	return fmt.Sprintf("127.%d.%d.%d", 1+n/62500, (n/250)%250, 1+n%250)
}

// davReq is one HTTP request; path is sent verbatim (not cleaned).
type davReq struct {
	method, path string
	user, pass   string // no Authorization when user is ""
	from         string // local loopback address ("": any)
	hdr          map[string]string
	body         string
}

func (r davReq) String() string { return r.method + " " + r.path + " " + r.body }

// do sends r and returns the status and body.
func (ls *liveServer) do(c *http.Client, r davReq) (int, string) {
	ls.t.Helper()
	req, err := http.NewRequest(r.method, ls.davURL, strings.NewReader(r.body))
	if err != nil {
		ls.t.Fatal(err)
	}
	req.URL.Opaque = r.path // verbatim, dots and escapes included
	if r.user != "" {
		req.SetBasicAuth(r.user, r.pass)
	}
	for k, v := range r.hdr {
		req.Header.Set(k, v)
	}
	if r.from != "" {
		c = httpClientFrom(r.from)
		defer c.CloseIdleConnections()
	}
	resp, err := c.Do(req)
	if err != nil {
		ls.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, string(b)
}

// lineConn speaks a line protocol (IMAP, SMTP) by hand.
type lineConn struct {
	t   testing.TB
	c   net.Conn
	r   *bufio.Reader
	tag int
}

func dialLine(t testing.TB, addr string) *lineConn { return dialLineFrom(t, addr, "") }

// dialLineFrom connects from the loopback address from ("": any).
func dialLineFrom(t testing.TB, addr, from string) *lineConn {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &lineConn{t: t, c: c, r: bufio.NewReader(c)}
}

func (lc *lineConn) line() string {
	lc.t.Helper()
	lc.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	l, err := lc.r.ReadString('\n')
	if err != nil {
		lc.t.Fatalf("reading: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

func (lc *lineConn) send(s string) {
	lc.t.Helper()
	lc.c.SetWriteDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(lc.c, s); err != nil {
		lc.t.Fatal(err)
	}
}

// imap sends one tagged command (which may contain LITERAL+ literals) and
// returns everything the server answered and the tagged status ("OK ...").
func (lc *lineConn) imap(cmd string) (all, status string) {
	lc.t.Helper()
	lc.tag++
	tag := fmt.Sprintf("z%d", lc.tag)
	lc.send(tag + " " + cmd + "\r\n")
	var b strings.Builder
	for {
		l := lc.line()
		b.WriteString(l + "\n")
		if strings.HasPrefix(l, tag+" ") {
			return b.String(), strings.TrimPrefix(l, tag+" ")
		}
	}
}

// imapLogin opens an IMAP connection (plaintext, allowed on loopback) and
// logs in.
func (ls *liveServer) imapLogin(t testing.TB, user, pass string) *lineConn {
	t.Helper()
	lc := dialLine(t, ls.addr("listen.imap"))
	lc.line() // greeting
	if _, st := lc.imap(fmt.Sprintf("LOGIN %q %q", user, pass)); !strings.HasPrefix(st, "OK") {
		t.Fatalf("IMAP LOGIN %s: %s", user, st)
	}
	return lc
}

// smtpReply reads one (possibly multi-line) SMTP reply.
func (lc *lineConn) smtpReply() string {
	lc.t.Helper()
	var b strings.Builder
	for {
		l := lc.line()
		b.WriteString(l + "\n")
		if len(l) < 4 || l[3] != '-' {
			return b.String()
		}
	}
}

// smtp sends a command line and returns the reply.
func (lc *lineConn) smtp(cmd string) string {
	lc.t.Helper()
	lc.send(cmd + "\r\n")
	return lc.smtpReply()
}

// imapLiteral is a LITERAL+ literal of s.
func imapLiteral(s string) string { return fmt.Sprintf("{%d+}\r\n%s", len(s), s) }

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

func newUser(t testing.TB, dir *store.Directory, login, pass string) *store.Account {
	a, _ := storetest.User(t, dir, login, pass)
	return a
}
