package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Names of the self-signed certificate files, in <data_dir>/tls.
const (
	SelfSignedDir      = "tls"
	SelfSignedCertFile = "selfsigned.crt"
	SelfSignedKeyFile  = "selfsigned.key"
)

const (
	selfSignedValidity = 10 * 365 * 24 * time.Hour
	// renewBefore: a self-signed certificate this close to expiry is replaced at start-up.
	renewBefore = 30 * 24 * time.Hour
)

// selfSigned returns the self-signed certificate for hostname kept in dataDir, generating it if needed.
func selfSigned(dataDir, hostname string) (*tls.Certificate, error) {
	dir := filepath.Join(dataDir, SelfSignedDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	// MkdirAll leaves an existing directory alone; the key must not be readable by others.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	certPath := filepath.Join(dir, SelfSignedCertFile)
	keyPath := filepath.Join(dir, SelfSignedKeyFile)

	cert, err := loadSelfSigned(certPath, keyPath, hostname, time.Now())
	if err != nil {
		return nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	if cert != nil {
		return cert, nil
	}
	certPEM, keyPEM, err := generateSelfSigned(hostname, time.Now())
	if err != nil {
		return nil, fmt.Errorf("generating self-signed certificate: %w", err)
	}
	// Key first: a crash between the two renames leaves a key that does not match the old certificate,
	// which loadSelfSigned treats as missing.
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("writing self-signed certificate: %w", err)
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("writing self-signed certificate: %w", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("generated self-signed certificate: %w", err)
	}
	return &c, nil
}

// loadSelfSigned loads the kept certificate. It returns nil and no error when a new one must be
// generated: a file is missing or not a matching certificate and key, the certificate expires within
// renewBefore, or it is not valid for hostname. Errors reading the files are returned.
func loadSelfSigned(certPath, keyPath, hostname string, now time.Time) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil
	}
	if cert.Leaf == nil { // GODEBUG=x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, nil
		}
	}
	if now.Add(renewBefore).After(cert.Leaf.NotAfter) || now.Before(cert.Leaf.NotBefore) {
		return nil, nil
	}
	if cert.Leaf.VerifyHostname(hostname) != nil {
		return nil, nil
	}
	return &cert, nil
}

// generateSelfSigned makes an ECDSA P-256 certificate valid for ten years for hostname, "localhost",
// 127.0.0.1 and ::1, and returns it and its key in PEM.
func generateSelfSigned(hostname string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	names := []string{hostname}
	if hostname != "localhost" {
		names = append(names, "localhost")
	}
	notBefore := now.Add(-time.Hour) // tolerate clocks slightly behind ours
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostname, Organization: []string{"kreide self-signed"}},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              names,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

// writeFileAtomic replaces path with data: temporary file in the same directory, fsync, rename, fsync
// of the directory. A crash leaves either the old file or the new one, never a mix.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*") // created with mode 0600
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
