package imap

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"kreide/store"
	"kreide/store/storetest"
)

const (
	testUser = "alice@example.org"
	testPass = "correct horse battery"
)

// testEnv is a store with one user and a server listening on loopback:
// plain (port 143 style) and implicit TLS (port 993 style).
type testEnv struct {
	t        testing.TB
	dir      *store.Directory
	acct     *store.Account // alice, unlocked, for direct store access
	srv      *Server
	addr     string // plaintext + STARTTLS
	tlsAddr  string // implicit TLS
	certPEM  []byte
	tlsConf  *tls.Config // client side, trusting the test certificate
	timeouts *timeouts   // shorter idle timeouts, set by an envOption
}

func withTimeouts(to timeouts) envOption {
	return func(_ *Options, e *testEnv) { e.timeouts = &to }
}

type envOption func(*Options, *testEnv)

// newEnv starts a server. By default plaintext logins are allowed from
// loopback (kreide's rule), so tests can use DialInsecure.
func newEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	e := &testEnv{t: t, dir: storetest.Open(t)}
	e.acct, _ = storetest.User(t, e.dir, testUser, testPass)
	cert, certPEM := selfSigned(t)
	e.certPEM = certPEM
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	e.tlsConf = &tls.Config{RootCAs: pool, ServerName: "localhost"}
	o := Options{
		Dir:            e.dir,
		TLS:            &tls.Config{Certificates: []tls.Certificate{cert}},
		AllowPlaintext: Loopback,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if testing.Verbose() && os.Getenv("KREIDE_IMAP_LOG") != "" {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, f := range opts {
		f(&o, e)
	}
	e.srv = New(o)
	if e.timeouts != nil {
		e.srv.timeouts = *e.timeouts // before any connection is accepted
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr, e.tlsAddr = ln.Addr().String(), tln.Addr().String()
	go e.srv.Serve(ln)
	go e.srv.ServeTLS(tln)
	t.Cleanup(func() { e.srv.Close() })
	return e
}

// selfSigned makes a certificate for localhost and 127.0.0.1.
func selfSigned(t testing.TB) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		DNSNames:              []string{"localhost", "127.0.0.1"}, // mbsync 1.4 matches IPs against DNS names
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert, certPEM
}

// dial connects without logging in.
func (e *testEnv) dial(opts *imapclient.Options) *imapclient.Client {
	e.t.Helper()
	c, err := imapclient.DialInsecure(e.addr, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// login connects and logs in as alice.
func (e *testEnv) login(opts *imapclient.Options) *imapclient.Client {
	e.t.Helper()
	c := e.dial(opts)
	if err := c.Login(testUser, testPass).Wait(); err != nil {
		e.t.Fatalf("login: %v", err)
	}
	return c
}

// selectInbox logs in and selects INBOX.
func (e *testEnv) selectInbox(opts *imapclient.Options) *imapclient.Client {
	e.t.Helper()
	c := e.login(opts)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// appendMsg APPENDs raw to mailbox and returns its UID.
func appendMsg(t testing.TB, c *imapclient.Client, mailbox string, raw []byte, opts *imap.AppendOptions) imap.UID {
	t.Helper()
	cmd := c.Append(mailbox, int64(len(raw)), opts)
	if _, err := cmd.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := cmd.Wait()
	if err != nil {
		t.Fatalf("APPEND: %v", err)
	}
	return data.UID
}

// fixture reads a message from testdata.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// simpleMessage builds a small message with CRLF line ends.
func simpleMessage(subject, body string) []byte {
	return []byte(strings.ReplaceAll(fmt.Sprintf("From: Bob <bob@example.net>\nTo: alice@example.org\nSubject: %s\nDate: Mon, 02 Jan 2023 10:00:00 +0100\nMessage-ID: <%s@example.net>\n\n%s\n",
		subject, strings.ReplaceAll(subject, " ", "."), body), "\n", "\r\n"))
}

// rawConn speaks IMAP by hand, for tests that check exact responses.
type rawConn struct {
	t   testing.TB
	c   net.Conn
	r   *bufio.Reader
	tag atomic.Int64
}

func (e *testEnv) raw() *rawConn { return e.rawT(e.t) }

func (e *testEnv) rawT(t testing.TB) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawConn{t: t, c: c, r: bufio.NewReader(c)}
	rc.line() // greeting
	return rc
}

func (e *testEnv) rawLogin() *rawConn {
	rc := e.raw()
	rc.ok("LOGIN %s %q", testUser, testPass)
	return rc
}

func (rc *rawConn) line() string {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := rc.r.ReadString('\n')
	if err != nil {
		rc.t.Fatalf("reading response: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// cmd sends a command and returns the untagged lines and the tagged
// completion. Literals in responses are read into the line they belong to.
func (rc *rawConn) cmd(format string, args ...any) (untagged []string, done string) {
	rc.t.Helper()
	tag := fmt.Sprintf("t%d", rc.tag.Add(1))
	if _, err := fmt.Fprintf(rc.c, "%s %s\r\n", tag, fmt.Sprintf(format, args...)); err != nil {
		rc.t.Fatal(err)
	}
	for {
		l := rc.readWithLiterals()
		if strings.HasPrefix(l, tag+" ") {
			return untagged, strings.TrimPrefix(l, tag+" ")
		}
		untagged = append(untagged, l)
	}
}

func (rc *rawConn) readWithLiterals() string {
	l := rc.line()
	for strings.HasSuffix(l, "}") {
		i := strings.LastIndexByte(l, '{')
		if i < 0 {
			break
		}
		var n int
		if _, err := fmt.Sscanf(strings.TrimSuffix(l[i+1:], "+}"), "%d", &n); err != nil {
			if _, err := fmt.Sscanf(l[i+1:], "%d}", &n); err != nil {
				break
			}
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(rc.r, buf); err != nil {
			rc.t.Fatal(err)
		}
		l += string(buf) + rc.line()
	}
	return l
}

// ok runs a command that must succeed.
func (rc *rawConn) ok(format string, args ...any) []string {
	rc.t.Helper()
	u, done := rc.cmd(format, args...)
	if !strings.HasPrefix(done, "OK") {
		rc.t.Fatalf("%s: %s (untagged %q)", fmt.Sprintf(format, args...), done, u)
	}
	return u
}

var ctx = context.Background()

// encodeBase64Lines encodes b as base64 in 76-character CRLF lines.
func encodeBase64Lines(b []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(b)
	var out bytes.Buffer
	for len(enc) > 76 {
		out.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	out.WriteString(enc + "\r\n")
	return out.Bytes()
}
