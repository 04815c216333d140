package store_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"kreide/store"
	"kreide/store/storetest"
)

func TestDKIMKeys(t *testing.T) {
	path := t.TempDir()
	d, err := store.Open(path, storetest.Options())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d.AddDomain(ctx, "example.org")
	if _, err := d.DKIMKeys(ctx, "other.test"); !errors.Is(err, store.ErrUnknownDomain) {
		t.Fatalf("foreign domain: %v", err)
	}
	// Concurrent first use agrees on one key set.
	var wg sync.WaitGroup
	sets := make([][]store.DKIMKey, 4)
	for i := range sets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sets[i], _ = d.DKIMKeys(ctx, "Example.org.")
		}()
	}
	wg.Wait()
	keys := sets[0]
	if len(keys) != 2 || keys[0].Algorithm != "ed25519" || keys[1].Algorithm != "rsa" {
		t.Fatalf("%+v", keys)
	}
	for _, s := range sets[1:] {
		if len(s) != 2 || s[0].DNSRecord() != keys[0].DNSRecord() || s[1].DNSRecord() != keys[1].DNSRecord() {
			t.Fatal("concurrent callers got different keys")
		}
	}
	if _, ok := keys[0].Signer.(ed25519.PrivateKey); !ok {
		t.Fatal("not an Ed25519 key")
	}
	rk, ok := keys[1].Signer.(*rsa.PrivateKey)
	if !ok || rk.N.BitLen() != 2048 {
		t.Fatal("not an RSA-2048 key")
	}
	if !strings.HasPrefix(keys[0].DNSRecord(), "v=DKIM1; k=ed25519; p=") || !strings.HasSuffix(keys[1].DNSName(), "._domainkey.example.org") {
		t.Fatalf("%s %s", keys[0].DNSRecord(), keys[1].DNSName())
	}
	// The server key file is private, and no private key is in clear.
	st, err := os.Stat(filepath.Join(path, "server.key"))
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != 32 {
		t.Fatalf("server.key: %v %v", st, err)
	}
	der := rk.D.Bytes()
	d.Close()
	sys, _ := os.ReadFile(filepath.Join(path, "system.db"))
	if bytes.Contains(sys, der) || bytes.Contains(sys, keys[0].Signer.(ed25519.PrivateKey).Seed()) {
		t.Fatal("private key in clear in system.db")
	}

	// After a restart the same keys come back and sign.
	d, err = store.Open(path, storetest.Options())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	again, err := d.DKIMKeys(ctx, "example.org")
	if err != nil || again[1].DNSRecord() != keys[1].DNSRecord() || again[0].Selector != keys[0].Selector {
		t.Fatalf("keys changed across restart: %v", err)
	}
	h := sha256.Sum256([]byte("x"))
	sig, err := again[1].Signer.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil || rsa.VerifyPKCS1v15(&rk.PublicKey, crypto.SHA256, h[:], sig) != nil {
		t.Fatalf("reloaded RSA key does not sign: %v", err)
	}
}

func TestServerKeyCorrupt(t *testing.T) {
	path := t.TempDir()
	d, err := store.Open(path, storetest.Options())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	os.WriteFile(filepath.Join(path, "server.key"), []byte("short"), 0o600)
	d.AddDomain(context.Background(), "example.org")
	if _, err := d.DKIMKeys(context.Background(), "example.org"); err == nil {
		t.Fatal("a corrupt server key was accepted")
	}
}
