package tlsconf

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"kreide/config"
)

// acmeTestConfig is a config with tls.acme for a public-looking name.
func acmeTestConfig(t *testing.T) *config.Config {
	t.Helper()
	c := testConfig(t)
	c.Hostname = "mail.kreide-schule.de"
	c.Domains = []string{"kreide-schule.de"}
	c.DemoAccount = ""
	c.TLS = config.TLS{ACME: true, ACMEEmail: "admin@kreide-schule.de"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// ecdsaHello is what a current client sends.
func ecdsaHello(name string) *tls.ClientHelloInfo {
	return &tls.ClientHelloInfo{
		ServerName:       name,
		CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		SupportedCurves:  []tls.CurveID{tls.CurveP256},
		SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
	}
}

// fakeACME is an ACME server that answers nothing useful, and counts requests.
func fakeACME(t *testing.T) (url string, hits *atomic.Int32) {
	hits = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/directory", hits
}

// A certificate obtained earlier (in <data_dir>/acme, as autocert keeps it)
// is served through autocert's GetCertificate, without asking the
// certificate authority; to clients without a server name too.
func TestACMECachedCertificate(t *testing.T) {
	c := acmeTestConfig(t)
	url, hits := fakeACME(t)
	tc, err := LoadWith(c, Options{ACMEDirectoryURL: url})
	if err != nil {
		t.Fatal(err)
	}
	if tc.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %x, want TLS 1.2", tc.MinVersion)
	}
	if m := mode(t, filepath.Join(c.DataDir, ACMEDir)); m != 0o700 {
		t.Errorf("%s has mode %v, want 0700", ACMEDir, m)
	}
	// autocert's cache entry: the private key, then the chain, in PEM.
	certPEM, keyPEM, err := generateSelfSigned(c.Hostname, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.DataDir, ACMEDir, c.Hostname), append(keyPEM, certPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	cached, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{c.Hostname, "MAIL.kreide-schule.de.", "", "unknown.example"} {
		cert, err := tc.GetCertificate(ecdsaHello(name))
		if err != nil {
			t.Fatalf("GetCertificate(%q): %v", name, err)
		}
		if !leaf(t, cert).Equal(leaf(t, &cached)) {
			t.Errorf("GetCertificate(%q) did not serve the cached certificate", name)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the certificate authority was asked %d times for a cached certificate", n)
	}

	// A real handshake on the HTTPS configuration: TLS 1.2 or later,
	// HTTP/1.1, and the certificate from the cache.
	https := HTTPS(c, tc)
	if !slices.Contains(https.NextProtos, "acme-tls/1") || !slices.Contains(https.NextProtos, "http/1.1") {
		t.Fatalf("HTTPS NextProtos %v, want http/1.1 and acme-tls/1", https.NextProtos)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", https)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: c.Hostname, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	st := conn.ConnectionState()
	conn.Close()
	if st.Version < tls.VersionTLS12 || st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("version %x, protocol %q", st.Version, st.NegotiatedProtocol)
	}
	if !st.PeerCertificates[0].Equal(leaf(t, &cached)) {
		t.Error("the handshake did not present the cached certificate")
	}
	// TLS 1.1 is refused.
	if c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}); err == nil {
		c.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
	// A TLS-ALPN-01 check goes to autocert, which has no challenge pending:
	// the handshake fails rather than handing out the certificate.
	if c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: c.Hostname, NextProtos: []string{"acme-tls/1"}}); err == nil {
		c.Close()
		t.Error("an acme-tls/1 handshake without a pending challenge succeeded")
	}
}

// While the certificate authority cannot give a certificate, clients get the
// self-signed one, and the authority is asked again only after a pause.
func TestACMEFallbackAndBackoff(t *testing.T) {
	c := acmeTestConfig(t)
	url, hits := fakeACME(t)
	tc, err := LoadWith(c, Options{ACMEDirectoryURL: url})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tc.GetCertificate(ecdsaHello(c.Hostname))
	if err != nil {
		t.Fatalf("GetCertificate: %v", err)
	}
	l := leaf(t, cert)
	if !slices.Contains(l.Subject.Organization, "kreide self-signed") || l.VerifyHostname(c.Hostname) != nil {
		t.Errorf("fallback certificate: subject %v, names %v", l.Subject, l.DNSNames)
	}
	asked := hits.Load()
	if asked == 0 {
		t.Fatal("the certificate authority was not asked")
	}
	for range 3 {
		if _, err := tc.GetCertificate(ecdsaHello(c.Hostname)); err != nil {
			t.Fatal(err)
		}
	}
	if n := hits.Load(); n != asked {
		t.Errorf("asked the certificate authority %d more times during the pause", n-asked)
	}
	if _, err := os.Stat(filepath.Join(c.DataDir, SelfSignedDir, SelfSignedCertFile)); err != nil {
		t.Errorf("no self-signed certificate kept: %v", err)
	}
}

func TestHTTPSWithoutACME(t *testing.T) {
	c := testConfig(t)
	base, err := Load(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := HTTPS(c, base); got != base {
		t.Error("HTTPS changed the configuration without tls.acme")
	}
	if HTTPS(c, nil) != nil {
		t.Error("HTTPS(nil) is not nil")
	}
	names := strings.Join(ACMEHosts(acmeTestConfig(t)), " ")
	if names != "mail.kreide-schule.de autoconfig.kreide-schule.de autodiscover.kreide-schule.de" {
		t.Errorf("ACMEHosts: %s", names)
	}
}
