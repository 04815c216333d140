package store

import (
	"context"
	stdcrypto "crypto"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"kreide/crypto"
)

// The server key protects what the server must read without any user's key:
// the outbound queue (envelopes and spooled messages) and the DKIM private
// keys. It is 32 random bytes in <data dir>/server.key (mode 0600), made on
// first use. It keeps these out of clear text on disk (invariant 1: a grep of
// the data dir finds no address or message), but whoever holds the whole data
// dir holds this key too: it is not a secret from the machine's root.
const serverKeyFile = "server.key"

// bktDKIM holds domain -> DKIM keys sealed under the server's DKIM key.
var bktDKIM = []byte("dkimkeys")

// Purposes of keys derived from the server key (HKDF-SHA256, one label each).
const (
	serverKeyQueue = "kreide/v1/server/queue"
	serverKeyDKIM  = "kreide/v1/server/dkim"
)

// serverKey returns the key derived from the server key for purpose, creating
// the server key file on first use. Two processes or goroutines racing to
// create it agree on one key: the file is linked into place only if absent.
func (d *Directory) serverKey(purpose string) (crypto.Key, error) {
	master, err := d.serverMasterKey()
	if err != nil {
		return crypto.Key{}, err
	}
	b, err := hkdf.Key(sha256.New, master[:], nil, purpose, len(master))
	if err != nil {
		return crypto.Key{}, err
	}
	return crypto.KeyFromBytes(b)
}

func (d *Directory) serverMasterKey() (crypto.Key, error) {
	path := filepath.Join(d.dir, serverKeyFile)
	for range 2 {
		b, err := os.ReadFile(path)
		if err == nil {
			k, err := crypto.KeyFromBytes(b)
			if err != nil {
				return k, fmt.Errorf("%s: %w", path, err)
			}
			return k, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return crypto.Key{}, err
		}
		if err := createServerKey(d.dir, path); err != nil {
			return crypto.Key{}, err
		}
	}
	return crypto.Key{}, fmt.Errorf("%w: cannot create %s", ErrInvalid, path)
}

func createServerKey(dir, path string) error {
	tmp, err := os.CreateTemp(dir, serverKeyFile+".tmp-*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	k := crypto.NewKey()
	if _, err := tmp.Write(k[:]); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(dir)
}

// DKIMKey is one DKIM signing key of a domain.
type DKIMKey struct {
	Domain   string
	Selector string
	// Algorithm is "ed25519" (RFC 8463) or "rsa" (2048 bits).
	Algorithm string
	Created   time.Time
	// Signer is the private key (ed25519.PrivateKey or *rsa.PrivateKey).
	Signer stdcrypto.Signer
}

// DNSName is where the public key is published: <selector>._domainkey.<domain>.
func (k *DKIMKey) DNSName() string { return k.Selector + "._domainkey." + k.Domain }

// DNSRecord is the TXT record to publish at DNSName (RFC 6376 section 3.6.1).
func (k *DKIMKey) DNSRecord() string {
	var p []byte
	switch pub := k.Signer.Public().(type) {
	case ed25519.PublicKey:
		p = pub // RFC 8463: the raw 32-byte key
	default:
		p, _ = x509.MarshalPKIXPublicKey(pub)
	}
	return fmt.Sprintf("v=DKIM1; k=%s; p=%s", k.Algorithm, base64.StdEncoding.EncodeToString(p))
}

type dkimKeyRecord struct {
	Selector  string    `json:"s"`
	Algorithm string    `json:"a"`
	Created   time.Time `json:"c"`
	PKCS8     []byte    `json:"k"`
}

// DKIMKeys returns the domain's DKIM keys, an Ed25519 and an RSA-2048 one,
// generating and storing them (sealed under the server key) on first use.
// The domain must be served here.
func (d *Directory) DKIMKeys(ctx context.Context, domain string) ([]DKIMKey, error) {
	domain = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(domain), "."))
	if !d.ServesDomain(ctx, domain) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownDomain, domain)
	}
	kk, err := d.serverKey(serverKeyDKIM)
	if err != nil {
		return nil, err
	}
	rc := crypto.NewRecordCipher(kk, "system")
	recs, err := d.loadDKIM(rc, domain)
	if err != nil || recs != nil {
		return decodeDKIM(domain, recs, err)
	}
	// Generate outside the transaction (RSA takes a while); if another caller
	// stored keys meanwhile, theirs win and ours are dropped.
	now := time.Now().UTC().Truncate(time.Second)
	suffix := now.Format("200601")
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	var fresh []dkimKeyRecord
	for _, k := range []struct {
		alg string
		key any
	}{{"ed25519", edPriv}, {"rsa", rsaPriv}} {
		der, err := x509.MarshalPKCS8PrivateKey(k.key)
		if err != nil {
			return nil, err
		}
		fresh = append(fresh, dkimKeyRecord{Selector: k.alg + "-" + suffix, Algorithm: k.alg, Created: now, PKCS8: der})
	}
	err = d.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bktDKIM)
		if err != nil {
			return err
		}
		if v := b.Get([]byte(domain)); v != nil {
			recs, err = openDKIM(rc, domain, v)
			return err
		}
		plain, err := json.Marshal(fresh)
		if err != nil {
			return err
		}
		recs = fresh
		return b.Put([]byte(domain), rc.Seal(string(bktDKIM), []byte(domain), plain))
	})
	return decodeDKIM(domain, recs, err)
}

func (d *Directory) loadDKIM(rc *crypto.RecordCipher, domain string) ([]dkimKeyRecord, error) {
	var recs []dkimKeyRecord
	err := d.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktDKIM)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(domain))
		if v == nil {
			return nil
		}
		var err error
		recs, err = openDKIM(rc, domain, v)
		return err
	})
	return recs, err
}

func openDKIM(rc *crypto.RecordCipher, domain string, sealed []byte) ([]dkimKeyRecord, error) {
	plain, err := rc.Open(string(bktDKIM), []byte(domain), sealed)
	if err != nil {
		return nil, fmt.Errorf("dkim keys of %s: %w", domain, err)
	}
	var recs []dkimKeyRecord
	if err := json.Unmarshal(plain, &recs); err != nil {
		return nil, err
	}
	return recs, nil
}

func decodeDKIM(domain string, recs []dkimKeyRecord, err error) ([]DKIMKey, error) {
	if err != nil {
		return nil, err
	}
	out := make([]DKIMKey, 0, len(recs))
	for _, r := range recs {
		k, err := x509.ParsePKCS8PrivateKey(r.PKCS8)
		if err != nil {
			return nil, fmt.Errorf("dkim key %s of %s: %w", r.Selector, domain, err)
		}
		signer, ok := k.(stdcrypto.Signer)
		if !ok {
			return nil, fmt.Errorf("dkim key %s of %s: not a signing key", r.Selector, domain)
		}
		out = append(out, DKIMKey{Domain: domain, Selector: r.Selector, Algorithm: r.Algorithm, Created: r.Created, Signer: signer})
	}
	return out, nil
}
