// Package tlsconf builds the server's TLS configuration from config.TLS, and says which peers count as
// local for the plaintext-login rule (config.Auth.AllowPlaintext).
//
// The certificate comes from Let's Encrypt when tls.acme is true (acme.go), from tls.cert_file and
// tls.key_file when both are set, otherwise from a self-signed certificate kept in <data_dir>/tls (when
// tls.self_signed is true). The self-signed
// certificate is generated on first use and reused afterwards, so that clients that accepted it once keep
// trusting it; it is generated again only when it is missing, unreadable as a certificate, about to expire
// or no longer valid for the configured hostname.
//
// Certificates are served through tls.Config.GetCertificate, so that reloading them without a restart
// can be added later without changing callers.
package tlsconf

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"kreide/config"
)

// ErrNoCertificate is returned by Load when the configuration names no certificate: neither
// tls.cert_file and tls.key_file, nor tls.self_signed. config.Validate allows that only when no listener
// needs TLS.
var ErrNoCertificate = errors.New("no TLS certificate configured: set tls.acme = true, or tls.cert_file and tls.key_file, or tls.self_signed = true")

// Load returns the TLS configuration for the server's listeners: TLS 1.2 at least, the certificate from
// the configuration. Each protocol should Clone it before changing it (e.g. NextProtos).
func Load(c *config.Config) (*tls.Config, error) { return LoadWith(c, Options{}) }

// LoadWith is Load with options (a logger for ACME).
func LoadWith(c *config.Config, o Options) (*tls.Config, error) {
	var cert *tls.Certificate
	var err error
	switch {
	case c.TLS.ACME:
		return acmeConfig(c, o)
	case c.TLS.CertFile != "" && c.TLS.KeyFile != "":
		cert, err = loadFiles(c.TLS.CertFile, c.TLS.KeyFile)
	case c.TLS.SelfSigned:
		cert, err = selfSigned(c.DataDir, c.Hostname)
	default:
		return nil, ErrNoCertificate
	}
	if err != nil {
		return nil, err
	}
	s := &certSource{}
	s.cert.Store(cert)
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.getCertificate,
	}, nil
}

// certSource serves the current certificate; a reloader can Store a new one.
type certSource struct {
	cert atomic.Pointer[tls.Certificate]
}

func (s *certSource) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cert.Load(), nil
}

// loadFiles loads the administrator's certificate and key.
func loadFiles(certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file %q, tls.key_file %q: %w", certFile, keyFile, err)
	}
	return &cert, nil
}

// IsLoopback reports whether addr is on this machine: an IP address in 127.0.0.0/8 or ::1 (also
// IPv4-mapped), or a unix socket. Protocols accept plaintext passwords only from such peers, and only
// when config.Auth.AllowPlaintext is "loopback".
func IsLoopback(addr net.Addr) bool {
	switch a := addr.(type) {
	case nil:
		return false
	case *net.TCPAddr:
		return a != nil && a.IP.IsLoopback()
	case *net.UDPAddr:
		return a != nil && a.IP.IsLoopback()
	case *net.IPAddr:
		return a != nil && a.IP.IsLoopback()
	case *net.UnixAddr:
		return a != nil
	}
	if addr.Network() == "unix" || addr.Network() == "unixpacket" {
		return true
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		host = addr.String()
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
