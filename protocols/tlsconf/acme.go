package tlsconf

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"kreide/config"
)

// ACME (tls.acme = true): certificates from Let's Encrypt, obtained and renewed by
// golang.org/x/crypto/acme/autocert.
//
//   - Challenge: TLS-ALPN-01 (RFC 8737) on the HTTPS listener. The certificate authority connects to
//     port 443 of the name and asks for the protocol "acme-tls/1"; the HTTPS listener's configuration
//     must list it in NextProtos (see HTTPS). No port 80 is needed.
//   - Names: the hostname, and autoconfig.<domain> and autodiscover.<domain> of every mail domain (the
//     names mail programs look up; `kreide dns records` publishes them as CNAMEs). A certificate is
//     obtained for a name the first time a client asks for it; the hostname's right at start-up
//     (Prefetch). A client that sends no server name, or one kreide has no certificate for, gets the
//     hostname's.
//   - Renewal: autocert renews a certificate 30 days before it expires, in the background, and
//     GetCertificate serves the new one at once: no restart.
//   - Storage: <data_dir>/acme holds the ACME account key and the certificates with their private keys,
//     in clear, readable by kreide's user only (like the self-signed certificate in <data_dir>/tls).
//   - Failures: while no certificate can be obtained (DNS not published yet, port 443 not reachable),
//     clients get the self-signed certificate of <data_dir>/tls, so mail keeps working with a warning,
//     and kreide asks the certificate authority again only after a pause that grows from one minute to
//     an hour (its rate limits punish repeated failures).

// ACMEDir is the directory in the data dir where ACME state is kept.
const ACMEDir = "acme"

// ALPNProto is the TLS protocol name of the TLS-ALPN-01 challenge.
const ALPNProto = acme.ALPNProto

// Options are the optional parts of LoadWith.
type Options struct {
	// Logger receives ACME failures and successes (nil: discarded).
	Logger *slog.Logger
	// ACMEDirectoryURL is the ACME server (default: Let's Encrypt's production server).
	ACMEDirectoryURL string
}

// ACMEHosts lists the names kreide obtains certificates for: the hostname, and autoconfig.<domain> and
// autodiscover.<domain> of every mail domain.
func ACMEHosts(c *config.Config) []string {
	hosts := []string{c.Hostname}
	for _, d := range c.Domains {
		hosts = append(hosts, "autoconfig."+d, "autodiscover."+d)
	}
	return hosts
}

// acmeConfig builds the TLS configuration of tls.acme.
func acmeConfig(c *config.Config, o Options) (*tls.Config, error) {
	cacheDir := filepath.Join(c.DataDir, ACMEDir)
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("tls.acme: %w", err)
	}
	if err := os.Chmod(cacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("tls.acme: %w", err)
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(cacheDir),
		HostPolicy: autocert.HostWhitelist(ACMEHosts(c)...),
		Email:      c.TLS.ACMEEmail,
	}
	if o.ACMEDirectoryURL != "" {
		m.Client = &acme.Client{DirectoryURL: o.ACMEDirectoryURL}
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &acmeSource{
		m:        m,
		hostname: strings.ToLower(c.Hostname),
		allowed:  map[string]bool{},
		logger:   logger,
		retry:    map[string]retryState{},
		fallback: func() (*tls.Certificate, error) { return selfSigned(c.DataDir, c.Hostname) },
	}
	for _, h := range ACMEHosts(c) {
		s.allowed[strings.ToLower(h)] = true
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.getCertificate,
	}, nil
}

// acmeSource serves ACME certificates, and the self-signed one while ACME fails.
type acmeSource struct {
	m        *autocert.Manager
	hostname string
	allowed  map[string]bool // lower-case names of ACMEHosts
	logger   *slog.Logger
	fallback func() (*tls.Certificate, error)

	mu    sync.Mutex
	retry map[string]retryState
}

// retryState delays the next ACME attempt for a name after failures.
type retryState struct {
	failures int
	notUntil time.Time
}

// Bounds of the pause between ACME attempts for a name that failed.
const (
	acmeRetryMin = time.Minute
	acmeRetryMax = time.Hour
)

func (s *acmeSource) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acme.ALPNProto {
		return s.m.GetCertificate(hello) // the certificate authority checking a challenge
	}
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if !s.allowed[name] {
		// No server name (old clients, an IP address), or a name kreide
		// obtains no certificate for: the hostname's is the best there is.
		name = s.hostname
	}
	if hello.ServerName != name {
		h := *hello
		h.ServerName = name
		hello = &h
	}
	now := time.Now()
	s.mu.Lock()
	st := s.retry[name]
	s.mu.Unlock()
	if now.Before(st.notUntil) {
		return s.fallback()
	}
	cert, err := s.m.GetCertificate(hello)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		if st.failures > 0 {
			s.logger.Info("tls.acme: obtained a certificate", "name", name)
		}
		delete(s.retry, name)
		return cert, nil
	}
	st = s.retry[name]
	st.failures++
	pause := min(acmeRetryMin<<min(st.failures-1, 10), acmeRetryMax)
	st.notUntil = time.Now().Add(pause)
	s.retry[name] = st
	s.logger.Warn("tls.acme: no certificate from the certificate authority; serving the self-signed one meanwhile",
		"name", name, "err", err, "next_try_in", pause.String(),
		"hint", "the DNS record of the name must point at this server, and port 443 (listen.https) must be reachable from the internet")
	return s.fallback()
}

// Prefetch obtains the certificate for hostname through tc (a configuration made by Load with tls.acme)
// now, rather than at the first client's connection, and logs the outcome. Call it once the HTTPS
// listener serves: the certificate authority connects to it.
func Prefetch(ctx context.Context, tc *tls.Config, hostname string, logger *slog.Logger) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// A hello that accepts ECDSA, as every current client does, so the
	// certificate obtained is the one clients will get.
	hello := &tls.ClientHelloInfo{
		ServerName:        hostname,
		CipherSuites:      []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_AES_128_GCM_SHA256},
		SupportedCurves:   []tls.CurveID{tls.X25519, tls.CurveP256},
		SignatureSchemes:  []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256, tls.PSSWithSHA256},
		SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12},
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		cert, err := tc.GetCertificate(hello)
		if err != nil {
			logger.Warn("tls.acme: no certificate yet", "name", hostname, "err", err)
			return
		}
		if cert != nil && cert.Leaf != nil && cert.Leaf.Issuer.String() != cert.Leaf.Subject.String() {
			logger.Info("tls.acme: certificate ready", "name", hostname, "issuer", cert.Leaf.Issuer.CommonName, "expires", cert.Leaf.NotAfter.Format(time.DateOnly))
		}
	}()
	select {
	case <-ctx.Done():
	case <-done:
	}
}

// HTTPS returns the TLS configuration for the HTTPS listener (listen.https): with tls.acme, base with
// HTTP/1.1 and the TLS-ALPN-01 challenge protocol in NextProtos, so that the certificate authority's
// check is answered there; otherwise base as it is. nil stays nil.
func HTTPS(c *config.Config, base *tls.Config) *tls.Config {
	if base == nil || !c.TLS.ACME {
		return base
	}
	tc := base.Clone()
	tc.NextProtos = []string{"http/1.1", acme.ALPNProto}
	return tc
}
