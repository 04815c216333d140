package tlsconf

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"kreide/config"
)

// testConfig is the default configuration with its data dir in a temporary directory.
func testConfig(t *testing.T) *config.Config {
	t.Helper()
	c := config.Default()
	c.DataDir = filepath.Join(t.TempDir(), "data")
	return c
}

// served returns the certificate a tls.Config hands out.
func served(t *testing.T, tc *tls.Config) *tls.Certificate {
	t.Helper()
	cert, err := tc.GetCertificate(&tls.ClientHelloInfo{ServerName: "localhost"})
	if err != nil || cert == nil {
		t.Fatalf("GetCertificate = %v, %v", cert, err)
	}
	return cert
}

func leaf(t *testing.T, cert *tls.Certificate) *x509.Certificate {
	t.Helper()
	l, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestSelfSignedGenerateThenReuse(t *testing.T) {
	c := testConfig(t)
	c.Hostname = "mail.school.example"
	first, err := Load(c)
	if err != nil {
		t.Fatal(err)
	}
	if first.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x, want TLS 1.2", first.MinVersion)
	}
	cert := served(t, first)
	l := leaf(t, cert)

	dir := filepath.Join(c.DataDir, "tls")
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("tls dir mode = %v, want 0700", m)
	}
	if m := mode(t, filepath.Join(dir, "selfsigned.key")); m != 0o600 {
		t.Errorf("key file mode = %v, want 0600", m)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("tls dir holds %d files, want 2 (no temporary files left)", len(entries))
	}

	// What the certificate is for.
	if !slices.Equal(l.DNSNames, []string{"mail.school.example", "localhost"}) {
		t.Errorf("DNSNames = %v", l.DNSNames)
	}
	if len(l.IPAddresses) != 2 || !l.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) || !l.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("IPAddresses = %v", l.IPAddresses)
	}
	pub, ok := l.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key is %T, want ECDSA P-256", l.PublicKey)
	}
	if years := l.NotAfter.Sub(l.NotBefore).Hours() / 24 / 365; years < 9.9 || years > 10.1 {
		t.Errorf("validity is %.1f years, want 10", years)
	}
	if time.Now().Before(l.NotBefore) {
		t.Errorf("NotBefore %v is in the future", l.NotBefore)
	}

	// A later start reuses it.
	second, err := Load(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(served(t, second).Certificate[0], cert.Certificate[0]) {
		t.Error("second Load generated a new certificate instead of reusing the kept one")
	}
}

func TestSelfSignedRegenerated(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(t *testing.T, c *config.Config, dir string)
	}{
		{"hostname changed", func(t *testing.T, c *config.Config, dir string) { c.Hostname = "other.school.example" }},
		{"certificate missing", func(t *testing.T, c *config.Config, dir string) {
			if err := os.Remove(filepath.Join(dir, "selfsigned.crt")); err != nil {
				t.Fatal(err)
			}
		}},
		{"key missing", func(t *testing.T, c *config.Config, dir string) {
			if err := os.Remove(filepath.Join(dir, "selfsigned.key")); err != nil {
				t.Fatal(err)
			}
		}},
		{"certificate garbage", func(t *testing.T, c *config.Config, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "selfsigned.crt"), []byte("garbage"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"key from another certificate", func(t *testing.T, c *config.Config, dir string) {
			_, keyPEM, err := generateSelfSigned("localhost", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "selfsigned.key"), keyPEM, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"about to expire", func(t *testing.T, c *config.Config, dir string) {
			certPEM, keyPEM, err := generateSelfSigned(c.Hostname, time.Now().Add(-selfSignedValidity+24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if err := writeFileAtomic(filepath.Join(dir, "selfsigned.key"), keyPEM, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := writeFileAtomic(filepath.Join(dir, "selfsigned.crt"), certPEM, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig(t)
			first, err := Load(c)
			if err != nil {
				t.Fatal(err)
			}
			before := served(t, first)
			tt.spoil(t, c, filepath.Join(c.DataDir, "tls"))
			second, err := Load(c)
			if err != nil {
				t.Fatal(err)
			}
			after := served(t, second)
			if bytes.Equal(before.Certificate[0], after.Certificate[0]) {
				t.Fatal("certificate was not regenerated")
			}
			if err := leaf(t, after).VerifyHostname(c.Hostname); err != nil {
				t.Error(err)
			}
			// And the new one is kept.
			third, err := Load(c)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(served(t, third).Certificate[0], after.Certificate[0]) {
				t.Error("regenerated certificate was not kept")
			}
		})
	}
}

func TestSelfSignedUnreadable(t *testing.T) {
	c := testConfig(t)
	if err := os.MkdirAll(filepath.Join(c.DataDir, "tls", "selfsigned.crt"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(c); err == nil || !strings.Contains(err.Error(), "self-signed certificate") {
		t.Errorf("Load with a directory in place of the certificate = %v, want an error", err)
	}
}

// handshake runs a TLS handshake over net.Pipe and returns the client's and the server's errors.
func handshake(t *testing.T, server, client *tls.Config) (clientState tls.ConnectionState, clientErr, serverErr error) {
	t.Helper()
	sc, cc := net.Pipe()
	defer sc.Close()
	defer cc.Close()
	srv := tls.Server(sc, server)
	done := make(chan error, 1)
	go func() {
		err := srv.Handshake()
		if err == nil {
			// Echo one line so the client sees a working connection.
			buf := make([]byte, 5)
			if _, err = io.ReadFull(srv, buf); err == nil {
				_, err = srv.Write(buf)
			}
		} else {
			sc.Close() // unblock a client still waiting
		}
		done <- err
	}()
	cli := tls.Client(cc, client)
	if err := cli.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	clientErr = cli.Handshake()
	if clientErr == nil {
		buf := make([]byte, 5)
		if _, err := cli.Write([]byte("hello")); err != nil {
			clientErr = err
		} else if _, err := io.ReadFull(cli, buf); err != nil || string(buf) != "hello" {
			clientErr = errors.Join(err, errors.New("echo failed: "+string(buf)))
		}
		clientState = cli.ConnectionState()
	} else {
		cc.Close()
	}
	return clientState, clientErr, <-done
}

func TestHandshake(t *testing.T) {
	c := testConfig(t)
	c.Hostname = "mail.school.example"
	server, err := Load(c)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf(t, served(t, server)))

	for _, name := range []string{"mail.school.example", "localhost", "127.0.0.1", "::1"} {
		t.Run(name, func(t *testing.T) {
			state, cerr, serr := handshake(t, server, &tls.Config{RootCAs: roots, ServerName: name})
			if cerr != nil || serr != nil {
				t.Fatalf("client: %v; server: %v", cerr, serr)
			}
			if state.Version < tls.VersionTLS12 {
				t.Errorf("negotiated version %x", state.Version)
			}
			if len(state.VerifiedChains) == 0 {
				t.Error("client did not verify the certificate")
			}
		})
	}

	// Over net.Pipe a client that rejects the certificate and the server writing its last handshake
	// messages block each other, so the name check is tested on the certificate itself.
	if err := leaf(t, served(t, server)).VerifyHostname("evil.example"); err == nil {
		t.Error("certificate is valid for a name it should not cover")
	}

	t.Run("TLS 1.1 refused", func(t *testing.T) {
		_, cerr, serr := handshake(t, server, &tls.Config{
			InsecureSkipVerify: true,
			MinVersion:         tls.VersionTLS10,
			MaxVersion:         tls.VersionTLS11,
		})
		if cerr == nil || serr == nil {
			t.Fatalf("TLS 1.1 handshake was not refused: client %v, server %v", cerr, serr)
		}
		if !strings.Contains(serr.Error(), "version") {
			t.Errorf("server error %q does not mention the protocol version", serr)
		}
	})
}

func TestCertFiles(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, err := generateSelfSigned("mail.school.example", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	want, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}

	c := testConfig(t)
	c.TLS.CertFile, c.TLS.KeyFile = certFile, keyFile // SelfSigned stays true: the files win
	tc, err := Load(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(served(t, tc).Certificate[0], want.Certificate[0]) {
		t.Error("Load does not serve the configured certificate")
	}
	if _, err := os.Stat(filepath.Join(c.DataDir, "tls")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a self-signed certificate was made although cert files are configured (stat: %v)", err)
	}

	c.TLS.CertFile = filepath.Join(dir, "missing.pem")
	if _, err := Load(c); err == nil || !strings.Contains(err.Error(), "tls.cert_file") || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("Load with a missing cert file = %v, want an error naming tls.cert_file and the file", err)
	}

	c.TLS.CertFile = keyFile // a key is not a certificate
	if _, err := Load(c); err == nil {
		t.Error("Load with a key as certificate succeeded")
	}
}

func TestNoCertificate(t *testing.T) {
	c := testConfig(t)
	c.TLS.SelfSigned = false
	if _, err := Load(c); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("Load = %v, want ErrNoCertificate", err)
	}
}

type otherAddr string

func (a otherAddr) Network() string { return "other" }
func (a otherAddr) String() string  { return string(a) }

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 143}, true},
		{&net.TCPAddr{IP: net.ParseIP("127.1.2.3"), Port: 143}, true},
		{&net.TCPAddr{IP: net.ParseIP("::1"), Port: 143}, true},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 143}, true},
		{&net.TCPAddr{IP: net.ParseIP("128.0.0.1"), Port: 143}, false},
		{&net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 143}, false},
		{&net.TCPAddr{IP: net.ParseIP("192.168.1.1"), Port: 143}, false},
		{&net.TCPAddr{IP: net.ParseIP("0.0.0.0"), Port: 143}, false},
		{&net.TCPAddr{IP: net.ParseIP("::"), Port: 143}, false},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 143}, false},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 143}, false},
		{&net.TCPAddr{}, false},
		{(*net.TCPAddr)(nil), false},
		{&net.UDPAddr{IP: net.ParseIP("127.0.0.1")}, true},
		{&net.IPAddr{IP: net.ParseIP("::1")}, true},
		{&net.IPAddr{IP: net.ParseIP("203.0.113.5")}, false},
		{&net.UnixAddr{Name: "/run/kreide.sock", Net: "unix"}, true},
		{&net.UnixAddr{Name: "@abstract", Net: "unixpacket"}, true},
		{otherAddr("127.0.0.1:993"), true},
		{otherAddr("[::1]:993"), true},
		{otherAddr("198.51.100.7:993"), false},
		{otherAddr("pipe"), false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := IsLoopback(tt.addr); got != tt.want {
			t.Errorf("IsLoopback(%#v) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	// net.Pipe's addresses are not loopback: they are not network peers at all.
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if IsLoopback(a.RemoteAddr()) {
		t.Error("IsLoopback(net.Pipe address) = true")
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	for _, content := range []string{"first", "second"} {
		if err := writeFileAtomic(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("mode = %v", m)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d files left in the directory, want 1", len(entries))
	}
	if err := writeFileAtomic(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}
