package crypto

import (
	"bytes"
	"crypto/hpke"
	"fmt"
	"sync"
	"testing"
)

// testKEM is generated once: the tests share it.
var testKEM = sync.OnceValues(func() (*KEMPublicKey, *KEMPrivateKey) {
	pub, priv, err := GenerateKEMKey()
	if err != nil {
		panic(err)
	}
	pk, err := ParseKEMPublicKey(pub)
	if err != nil {
		panic(err)
	}
	sk, err := ParseKEMPrivateKey(priv)
	if err != nil {
		panic(err)
	}
	return pk, sk
})

func TestGenerateKEMKey(t *testing.T) {
	pub, priv, err := GenerateKEMKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(pub) != KEMPublicKeySize || len(priv) != KEMPrivateKeySize {
		t.Fatalf("key sizes %d, %d; want %d, %d", len(pub), len(priv), KEMPublicKeySize, KEMPrivateKeySize)
	}
	sk, err := ParseKEMPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sk.PublicKey().Bytes(), pub) {
		t.Fatal("private key does not give back the public key")
	}
	// The parsed key keeps the seed alone; the expanded one gives the same
	// public key.
	if sk.sk != nil {
		t.Fatal("ParseKEMPrivateKey expanded the seed")
	}
	if x, err := sk.Expand(); err != nil || !bytes.Equal(x.PublicKey().Bytes(), pub) || x.sk == nil {
		t.Fatalf("Expand: %v", err)
	}
	priv[0] ^= 1
	if sk.seed[0] == priv[0] {
		t.Fatal("ParseKEMPrivateKey kept the caller's slice")
	}
	pk, err := ParseKEMPublicKey(pub)
	if err != nil || !bytes.Equal(pk.Bytes(), pub) {
		t.Fatalf("public key round trip: %v", err)
	}
	// The private key survives wrapping under a UMK, as the store keeps it.
	umk := NewKey()
	unwrapped, err := UnwrapKey(umk, WrapKey(umk, priv, []byte("kem")), []byte("kem"))
	if err != nil || !bytes.Equal(unwrapped, priv) {
		t.Fatal("private KEM key does not survive WrapKey")
	}
	pub2, _, _ := GenerateKEMKey()
	if bytes.Equal(pub, pub2) {
		t.Fatal("two key pairs are equal")
	}
}

func TestParseKEMKeyErrors(t *testing.T) {
	for _, n := range []int{0, 32, KEMPublicKeySize - 1, KEMPublicKeySize + 1} {
		if _, err := ParseKEMPublicKey(make([]byte, n)); err == nil {
			t.Errorf("ParseKEMPublicKey accepted %d bytes", n)
		}
	}
	for _, n := range []int{0, 31, 33, 64} {
		if _, err := ParseKEMPrivateKey(make([]byte, n)); err == nil {
			t.Errorf("ParseKEMPrivateKey accepted %d bytes", n)
		}
	}
}

func TestKEMRoundTrip(t *testing.T) {
	pk, sk := testKEM()
	tests := []struct {
		name      string
		info, msg []byte
	}{
		{"content key", []byte("kreide/v1/blob-key/u1/b1"), testBytes(30, 32)},
		{"empty info", nil, testBytes(31, 32)},
		{"empty message", []byte("i"), []byte{}},
		{"long message", []byte("i"), testBytes(32, 10000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sealed, err := pk.Seal(tc.info, tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			if len(sealed) != len(tc.msg)+KEMSealOverhead {
				t.Fatalf("sealed length %d, want %d", len(sealed), len(tc.msg)+KEMSealOverhead)
			}
			got, err := sk.Open(tc.info, sealed)
			if err != nil || !bytes.Equal(got, tc.msg) || got == nil {
				t.Fatalf("Open = %x, %v", got, err)
			}
			// Interoperability: the format is plain single-shot HPKE with the
			// documented suite, enc || ciphertext.
			x, err := sk.Expand()
			if err != nil {
				t.Fatal(err)
			}
			if got, err := x.Open(tc.info, sealed); err != nil || !bytes.Equal(got, tc.msg) {
				t.Fatalf("expanded key: Open = %x, %v", got, err)
			}
			raw, err := hpke.Open(x.sk, hpke.HKDFSHA256(), hpke.AES256GCM(), tc.info, sealed)
			if err != nil || !bytes.Equal(raw, tc.msg) {
				t.Fatalf("hpke.Open with MLKEM768X25519/HKDF-SHA256/AES-256-GCM: %v", err)
			}
			again, _ := pk.Seal(tc.info, tc.msg)
			if bytes.Equal(again, sealed) {
				t.Fatal("Seal is deterministic")
			}
		})
	}
}

func TestKEMFailures(t *testing.T) {
	pk, sk := testKEM()
	info := []byte("kreide/v1/blob-key/u1/b1")
	msg := testBytes(33, 32)
	sealed, err := pk.Seal(info, msg)
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := GenerateKEMKey()
	otherSK, _ := ParseKEMPrivateKey(other)
	expanded, err := sk.Expand()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		sk     *KEMPrivateKey
		info   []byte
		sealed []byte
	}{
		{"wrong private key", otherSK, info, sealed},
		{"wrong info, expanded key", expanded, []byte("kreide/v1/blob-key/u1/b2"), sealed},
		{"truncated, expanded key", expanded, info, sealed[:len(sealed)-1]},
		{"wrong info", sk, []byte("kreide/v1/blob-key/u1/b2"), sealed},
		{"empty", sk, info, nil},
		{"enc only", sk, info, sealed[:KEMEncSize]},
		{"no tag", sk, info, sealed[:KEMSealOverhead-1]},
		{"truncated", sk, info, sealed[:len(sealed)-1]},
		{"extended", sk, info, append(bytes.Clone(sealed), 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.sk.Open(tc.info, tc.sealed)
			mustDecryptErr(t, err, "Open")
			if got != nil {
				t.Fatal("data returned")
			}
		})
	}
	t.Run("every byte flipped", func(t *testing.T) {
		for i := range sealed {
			got, err := sk.Open(info, flipped(sealed, i, 0x01))
			mustDecryptErr(t, err, fmt.Sprintf("byte %d", i))
			if got != nil {
				t.Fatalf("byte %d: data returned", i)
			}
		}
		// The X25519 point's top bit is ignored by X25519 itself (RFC 7748);
		// X-Wing hashes the point, so flipping it must fail as well.
		_, err := sk.Open(info, flipped(sealed, KEMEncSize-1, 0x80))
		mustDecryptErr(t, err, "top bit of the ephemeral X25519 point")
	})
}
