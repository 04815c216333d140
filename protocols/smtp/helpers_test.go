package smtp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"kreide/store"
	"kreide/store/storetest"
)

// fakeResolver answers from maps; everything else is "not found", as
// net.Resolver reports it.
type fakeResolver struct {
	mu  sync.Mutex
	txt map[string][]string
	mx  map[string][]*net.MX
	ip  map[string][]net.IPAddr
}

func newFakeResolver() *fakeResolver {
	return &fakeResolver{txt: map[string][]string{}, mx: map[string][]*net.MX{}, ip: map[string][]net.IPAddr{}}
}

func notFound(name string) error {
	return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (r *fakeResolver) setTXT(name string, v ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.txt[strings.ToLower(name)] = v
}

func (r *fakeResolver) setMX(domain, host string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mx[domain] = []*net.MX{{Host: host + ".", Pref: 10}}
}

func (r *fakeResolver) setIP(host string, ip string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ip[host] = []net.IPAddr{{IP: net.ParseIP(ip)}}
}

func (r *fakeResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.txt[strings.ToLower(strings.TrimSuffix(name, "."))]; ok {
		return v, nil
	}
	return nil, notFound(name)
}

func (r *fakeResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.mx[strings.TrimSuffix(name, ".")]; ok {
		return v, nil
	}
	return nil, notFound(name)
}

func (r *fakeResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.ip[strings.TrimSuffix(host, ".")]; ok {
		return v, nil
	}
	return nil, notFound(host)
}

func (r *fakeResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	return nil, notFound(addr)
}

// testCert makes a self-signed certificate for 127.0.0.1 and localhost.
func testCert(t testing.TB) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mail.example.org"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost", "mail.example.org"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

// env is a running server with its store.
type env struct {
	t       testing.TB
	dir     *store.Directory
	srv     *Server
	res     *fakeResolver
	mx      string // addresses
	sub     string
	subs    string
	roots   *x509.CertPool
	options Options
}

func listen(t testing.TB) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// start runs a server on dir; tweak may change the options.
func start(t testing.TB, dir *store.Directory, res *fakeResolver, tweak func(*Options)) *env {
	t.Helper()
	tlsConf, roots := testCert(t)
	o := Options{
		Dir: dir, Hostname: "mail.example.org", TLS: tlsConf, Resolver: res, Logger: quietLogger(),
		AllowPlaintext: func(net.Conn) bool { return false },
		RetryBase:      50 * time.Millisecond, RetryMax: 200 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&o)
	}
	e := &env{t: t, dir: dir, res: res, roots: roots, options: o}
	e.srv = New(o)
	for _, l := range []struct {
		addr  *string
		serve func(net.Listener) error
	}{{&e.mx, e.srv.ServeMX}, {&e.sub, e.srv.ServeSubmission}, {&e.subs, e.srv.ServeSubmissions}} {
		ln := listen(t)
		*l.addr = ln.Addr().String()
		go l.serve(ln)
	}
	t.Cleanup(func() { e.srv.Close() })
	return e
}

func newEnv(t testing.TB, tweak func(*Options)) *env {
	return start(t, storetest.Open(t), newFakeResolver(), tweak)
}

func (e *env) user(login, password string) *store.Account {
	a, _ := storetest.User(e.t, e.dir, login, password)
	return a
}

// dialMX opens an SMTP client to port 25 with EHLO helo.
func (e *env) dialMX(helo string) *gosmtp.Client {
	e.t.Helper()
	c, err := gosmtp.Dial(e.mx)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := c.Hello(helo); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// dialSubmission opens a client to 587 and starts TLS.
func (e *env) dialSubmission() *gosmtp.Client {
	e.t.Helper()
	c, err := gosmtp.DialStartTLS(e.sub, &tls.Config{RootCAs: e.roots, ServerName: "localhost"})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// send runs one transaction and returns the error of the step that failed.
func send(c *gosmtp.Client, from string, to []string, msg string) error {
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	return w.Close()
}

// smtpCode returns the reply code and enhanced code of err ("550 5.1.1").
func smtpCode(err error) string {
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		return strings.TrimSpace(strings.Join([]string{strconv.Itoa(se.Code), ec(se.EnhancedCode)}, " "))
	}
	if err == nil {
		return "ok"
	}
	return "error: " + err.Error()
}

func ec(e gosmtp.EnhancedCode) string {
	if e == gosmtp.NoEnhancedCode || e == gosmtp.EnhancedCodeNotSet {
		return ""
	}
	return strconv.Itoa(e[0]) + "." + strconv.Itoa(e[1]) + "." + strconv.Itoa(e[2])
}

func wantCode(t testing.TB, err error, want string) {
	t.Helper()
	if got := smtpCode(err); !strings.HasPrefix(got, want) {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// messages returns the contents of the mailbox with role, oldest first.
func messages(t testing.TB, a *store.Account, role string) []string {
	t.Helper()
	ctx := context.Background()
	mb, err := a.MailboxByRole(ctx, role)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var uids []uint32
	err = a.Messages(ctx, mb.ID, nil, store.FetchOptions{}, func(m *store.Message) error {
		uids = append(uids, m.UID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, uid := range uids {
		r, err := a.OpenMessage(ctx, mb.ID, uid)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if _, err := io.Copy(&b, r); err != nil {
			t.Fatal(err)
		}
		r.Close()
		out = append(out, b.String())
	}
	return out
}

// waitMessages waits until the mailbox holds n messages.
func waitMessages(t testing.TB, a *store.Account, role string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msgs := messages(t, a, role)
		if len(msgs) >= n || time.Now().After(deadline) {
			if len(msgs) != n {
				t.Fatalf("%s has %d messages, want %d", role, len(msgs), n)
			}
			return msgs
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// headerOf returns the unfolded value of the first field name in msg.
func headerOf(msg, name string) string {
	head, _, _ := strings.Cut(msg, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	for i := 0; i < len(lines); i++ {
		k, v, ok := strings.Cut(lines[i], ":")
		if !ok || !strings.EqualFold(k, name) {
			continue
		}
		for i+1 < len(lines) && (strings.HasPrefix(lines[i+1], " ") || strings.HasPrefix(lines[i+1], "\t")) {
			i++
			v += " " + strings.TrimSpace(lines[i])
		}
		return strings.TrimSpace(v)
	}
	return ""
}

func simpleMessage(from, to, subject, body string) string {
	return "From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject +
		"\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <" + subject + "@test>\r\n\r\n" + body + "\r\n"
}
