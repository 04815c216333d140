package smtp

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	gosmtp "github.com/emersion/go-smtp"

	"kreide/store"
	"kreide/store/storetest"
)

// fakeRemote is another domain's MTA, a go-smtp server.
type fakeRemote struct {
	port int
	msgs chan remoteMsg
	// rcpt decides the reply to RCPT (nil: accept).
	rcpt func(to string) error
}

type remoteMsg struct {
	from string
	to   []string
	data []byte
	tls  bool
}

type remoteSession struct {
	r   *fakeRemote
	c   *gosmtp.Conn
	msg remoteMsg
}

func (s *remoteSession) Reset()        { s.msg = remoteMsg{} }
func (s *remoteSession) Logout() error { return nil }
func (s *remoteSession) Mail(from string, _ *gosmtp.MailOptions) error {
	s.msg.from = from
	return nil
}
func (s *remoteSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if s.r.rcpt != nil {
		if err := s.r.rcpt(to); err != nil {
			return err
		}
	}
	s.msg.to = append(s.msg.to, to)
	return nil
}
func (s *remoteSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.data = b
	_, s.msg.tls = s.c.TLSConnectionState()
	s.r.msgs <- s.msg
	return nil
}

func startRemote(t testing.TB, rcpt func(string) error) *fakeRemote {
	t.Helper()
	tlsConf, _ := testCert(t)
	r := &fakeRemote{msgs: make(chan remoteMsg, 10), rcpt: rcpt}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &remoteSession{r: r, c: c}, nil
	}))
	srv.Domain = "mx.remote.test"
	srv.TLSConfig = tlsConf
	srv.ErrorLog = slogLogger{quietLogger()}
	ln := listen(t)
	r.port = ln.Addr().(*net.TCPAddr).Port
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

func (r *fakeRemote) wait(t testing.TB) remoteMsg {
	t.Helper()
	select {
	case m := <-r.msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("nothing arrived at the remote server")
		return remoteMsg{}
	}
}

func routeRemote(res *fakeResolver) {
	res.setMX("remote.test", "mx.remote.test")
	res.setIP("mx.remote.test", "127.0.0.1")
}

func waitQueueEmpty(t testing.TB, d *store.Directory) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		q, err := d.Queue().List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(q) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue still holds %d messages: %+v", len(q), q[0].Recipients)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOutboundDKIMSigned(t *testing.T) {
	remote := startRemote(t, nil)
	e := newEnv(t, func(o *Options) { o.RemotePort = remote.port })
	routeRemote(e.res)
	e.user("alice@example.org", "password-alice")
	bob := e.user("bob@example.org", "password-bob")
	c := e.login("alice@example.org", "password-alice")
	msg := simpleMessage("Alice <alice@example.org>", "carol@remote.test, bob@example.org", "outbound", "Hello Carol, marker-outbound.")
	if err := send(c, "alice@example.org", []string{"carol@remote.test", "bob@example.org"}, msg); err != nil {
		t.Fatal(err)
	}
	got := remote.wait(t)
	if got.from != "alice@example.org" || len(got.to) != 1 || got.to[0] != "carol@remote.test" {
		t.Fatalf("envelope %q -> %q", got.from, got.to)
	}
	if !got.tls {
		t.Error("delivered without STARTTLS")
	}
	if !bytes.Contains(got.data, []byte("marker-outbound")) {
		t.Fatal("body missing")
	}
	// The local recipient got it directly.
	if n := len(messages(t, bob, store.RoleInbox)); n != 1 {
		t.Fatalf("bob has %d messages", n)
	}
	// Publish our keys as `kreide dns` would, then verify like a receiver.
	recs, err := DNSRecords(t.Context(), e.dir, "mail.example.org")
	if err != nil {
		t.Fatal(err)
	}
	verifier := newFakeResolver()
	for _, r := range recs {
		if r.Type == "TXT" && strings.Contains(r.Name, "._domainkey.") {
			verifier.setTXT(r.Name, r.Value)
		}
	}
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(got.data), &dkim.VerifyOptions{LookupTXT: lookupTXTFunc(t.Context(), verifier)})
	if err != nil {
		t.Fatal(err)
	}
	algs := map[string]bool{}
	for _, v := range verifs {
		if v.Err != nil || v.Domain != "example.org" {
			t.Errorf("signature of %s: %v", v.Domain, v.Err)
		}
	}
	for _, f := range strings.Split(string(got.data), "DKIM-Signature:")[1:] {
		for _, a := range []string{"a=ed25519-sha256", "a=rsa-sha256"} {
			if strings.Contains(strings.ReplaceAll(f[:min(len(f), 400)], "\r\n ", ""), a) {
				algs[a] = true
			}
		}
	}
	if len(verifs) != 2 || len(algs) != 2 {
		t.Fatalf("%d signatures, algorithms %v", len(verifs), algs)
	}
	waitQueueEmpty(t, e.dir)
}

func TestOutboundPermanentFailureBounces(t *testing.T) {
	remote := startRemote(t, func(to string) error {
		if strings.HasPrefix(to, "gone@") {
			return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
		}
		return nil
	})
	e := newEnv(t, func(o *Options) { o.RemotePort = remote.port })
	routeRemote(e.res)
	alice := e.user("alice@example.org", "password-alice")
	c := e.login("alice@example.org", "password-alice")
	msg := simpleMessage("alice@example.org", "gone@remote.test", "to-the-void", "marker-bounce")
	if err := send(c, "alice@example.org", []string{"gone@remote.test", "carol@remote.test"}, msg); err != nil {
		t.Fatal(err)
	}
	if got := remote.wait(t); len(got.to) != 1 || got.to[0] != "carol@remote.test" {
		t.Fatalf("remote got %q", got.to)
	}
	dsn := waitMessages(t, alice, store.RoleInbox, 1)[0]
	for _, want := range []string{
		"Content-Type: multipart/report; report-type=delivery-status",
		"Content-Type: message/delivery-status",
		"Reporting-MTA: dns; mail.example.org",
		"Final-Recipient: rfc822; gone@remote.test",
		"Action: failed",
		"Status: 5.1.1",
		"Remote-MTA: dns; mx.remote.test",
		"Diagnostic-Code: smtp; 550 5.1.1 no such mailbox",
		"Content-Type: text/rfc822-headers",
		"Subject: to-the-void",
		"Auto-Submitted: auto-replied",
	} {
		if !strings.Contains(dsn, want) {
			t.Errorf("DSN lacks %q", want)
		}
	}
	if strings.Contains(dsn, "carol@remote.test\r\nAction") || strings.Contains(dsn, "marker-bounce") {
		t.Error("DSN lists the delivered recipient or carries the body")
	}
	waitQueueEmpty(t, e.dir)
}

func TestOutboundExpiryBounces(t *testing.T) {
	remote := startRemote(t, func(string) error {
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	})
	e := newEnv(t, func(o *Options) {
		o.RemotePort = remote.port
		o.QueueLifetime = 300 * time.Millisecond
	})
	routeRemote(e.res)
	alice := e.user("alice@example.org", "password-alice")
	c := e.login("alice@example.org", "password-alice")
	if err := send(c, "alice@example.org", []string{"carol@remote.test"}, simpleMessage("alice@example.org", "carol@remote.test", "late", "x")); err != nil {
		t.Fatal(err)
	}
	dsn := waitMessages(t, alice, store.RoleInbox, 1)[0]
	for _, want := range []string{"Final-Recipient: rfc822; carol@remote.test", "Status: 4.4.7", "Diagnostic-Code: smtp; 451 4.3.0 try again later"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("DSN lacks %q", want)
		}
	}
	waitQueueEmpty(t, e.dir)
}

func TestOutboundNoMailServer(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.user("alice@example.org", "password-alice")
	c := e.login("alice@example.org", "password-alice")
	// nowhere.test has neither MX nor address: permanent failure at once.
	if err := send(c, "alice@example.org", []string{"x@nowhere.test"}, simpleMessage("alice@example.org", "x@nowhere.test", "nowhere", "x")); err != nil {
		t.Fatal(err)
	}
	dsn := waitMessages(t, alice, store.RoleInbox, 1)[0]
	if !strings.Contains(dsn, "Status: 5.1.2") {
		t.Errorf("DSN:\n%s", dsn)
	}
}

func TestQueueSurvivesRestart(t *testing.T) {
	path := t.TempDir()
	d, err := store.Open(path, storetest.Options())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.AddDomain(t.Context(), "example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateAccount(t.Context(), "alice@example.org", "password-alice"); err != nil {
		t.Fatal(err)
	}
	res := newFakeResolver()
	routeRemote(res)
	dead := listen(t)
	deadPort := dead.Addr().(*net.TCPAddr).Port
	dead.Close() // connections are refused: a temporary failure

	e1 := start(t, d, res, func(o *Options) { o.RemotePort = deadPort; o.RetryBase = time.Hour })
	c := e1.login("alice@example.org", "password-alice")
	if err := send(c, "alice@example.org", []string{"carol@remote.test"}, simpleMessage("alice@example.org", "carol@remote.test", "survivor", "marker-restart")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	var items []QueueItem
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		items, err = QueueList(t.Context(), d)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) == 1 && items[0].Attempts > 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(items) != 1 || items[0].Attempts != 1 || items[0].Recipients[0].State != store.RcptPending || items[0].Recipients[0].LastError == "" {
		t.Fatalf("queue: %+v", items)
	}
	e1.srv.Close()
	d.Close()

	// Nothing of the queued message is on disk in clear.
	filepath.WalkDir(path, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		for _, marker := range []string{"marker-restart", "carol@remote.test", "survivor"} {
			if bytes.Contains(b, []byte(marker)) {
				t.Errorf("%s contains %q in clear", p, marker)
			}
		}
		return nil
	})

	d2, err := store.Open(path, storetest.Options())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d2.Close() })
	remote := startRemote(t, nil)
	if err := QueueRetry(t.Context(), d2, items[0].ID); err != nil {
		t.Fatal(err)
	}
	e2 := start(t, d2, res, func(o *Options) { o.RemotePort = remote.port })
	got := remote.wait(t)
	if !bytes.Contains(got.data, []byte("marker-restart")) {
		t.Fatal("wrong message after restart")
	}
	waitQueueEmpty(t, e2.dir)
}

func TestQueueAdmin(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RetryBase = time.Hour })
	e.user("alice@example.org", "password-alice")
	e.res.setMX("unreachable.test", "mx.unreachable.test") // no address: temporary failure
	c := e.login("alice@example.org", "password-alice")
	if err := send(c, "alice@example.org", []string{"x@unreachable.test"}, simpleMessage("alice@example.org", "x@unreachable.test", "admin", "x")); err != nil {
		t.Fatal(err)
	}
	items, err := e.srv.QueueList(t.Context())
	if err != nil || len(items) != 1 {
		t.Fatalf("%v %v", items, err)
	}
	if err := e.srv.QueueDrop(t.Context(), items[0].ID); err != nil {
		t.Fatal(err)
	}
	waitQueueEmpty(t, e.dir)
	if err := e.srv.QueueDrop(t.Context(), items[0].ID); err == nil {
		t.Fatal("dropping twice succeeded")
	}
}
