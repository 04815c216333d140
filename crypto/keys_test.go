package crypto

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"strings"
	"testing"

	xhkdf "golang.org/x/crypto/hkdf"
)

func TestNewKey(t *testing.T) {
	seen := map[Key]bool{}
	for range 100 {
		k := NewKey()
		if k == (Key{}) || seen[k] {
			t.Fatalf("NewKey returned a zero or repeated key")
		}
		seen[k] = true
	}
}

func TestKeyFromBytes(t *testing.T) {
	k := testKey(7)
	got, err := KeyFromBytes(k[:])
	if err != nil || got != k {
		t.Fatalf("KeyFromBytes round trip: %v", err)
	}
	for _, n := range []int{0, 16, 31, 33} {
		if _, err := KeyFromBytes(make([]byte, n)); err == nil {
			t.Errorf("KeyFromBytes(%d bytes) succeeded", n)
		}
	}
}

func TestKeyRedacted(t *testing.T) {
	k := testKey(0x41) // printable bytes, would show up in %s
	for _, f := range []string{"%v", "%s", "%+v", "%#v"} {
		s := fmt.Sprintf(f, k)
		if strings.Contains(s, "ABC") || !strings.Contains(s, "redacted") {
			t.Errorf("Sprintf(%q, key) = %q, want it redacted", f, s)
		}
	}
	s := fmt.Sprintf("%v", &UserKeys{Record: k})
	if strings.Contains(s, "ABC") {
		t.Errorf("UserKeys printed with key bytes: %q", s)
	}
}

// hkdfRef is an independent HKDF-SHA256 (x/crypto) to cross-check the
// labels and salts used.
func hkdfRef(t *testing.T, secret, salt []byte, info string) Key {
	var k Key
	if _, err := io.ReadFull(xhkdf.New(sha256.New, secret, salt, []byte(info)), k[:]); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestDeriveUserKeys(t *testing.T) {
	umk := testKey(1)
	uk := DeriveUserKeys(umk)
	want := UserKeys{
		Record: hkdfRef(t, umk[:], nil, "kreide/v1/record"),
		Index:  hkdfRef(t, umk[:], nil, "kreide/v1/index"),
		Blob:   hkdfRef(t, umk[:], nil, "kreide/v1/blob"),
	}
	if *uk != want {
		t.Fatalf("DeriveUserKeys does not match HKDF-SHA256 with the documented labels")
	}
	all := []Key{umk, uk.Record, uk.Index, uk.Blob}
	for i := range all {
		for j := i + 1; j < len(all); j++ {
			if all[i] == all[j] {
				t.Errorf("keys %d and %d are equal", i, j)
			}
		}
	}
	if other := DeriveUserKeys(testKey(2)); other.Record == uk.Record {
		t.Error("different UMKs derive the same record key")
	}
}

func TestWrapKeyRoundTrip(t *testing.T) {
	kek := NewKey()
	tests := []struct {
		name   string
		secret []byte
		aad    []byte
	}{
		{"umk", testBytes(1, 32), []byte("umk/password/u1")},
		{"nil aad", testBytes(2, 32), nil},
		{"empty secret", []byte{}, []byte("x")},
		{"long secret", testBytes(3, 2400), []byte("kem-private/u1")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := WrapKey(kek, tc.secret, tc.aad)
			if len(w) != len(tc.secret)+WrapOverhead || w[0] != 1 {
				t.Fatalf("wrapped length %d (want %d) or version %d", len(w), len(tc.secret)+WrapOverhead, w[0])
			}
			if len(tc.secret) >= 8 && bytes.Contains(w, tc.secret[:8]) {
				t.Fatal("wrapped key contains the secret")
			}
			got, err := UnwrapKey(kek, w, tc.aad)
			if err != nil || !bytes.Equal(got, tc.secret) || got == nil {
				t.Fatalf("UnwrapKey = %x, %v; want %x", got, err, tc.secret)
			}
			if w2 := WrapKey(kek, tc.secret, tc.aad); bytes.Equal(w, w2) {
				t.Fatal("two wraps of the same secret are identical (nonce not random)")
			}
		})
	}
}

func TestUnwrapKeyFailures(t *testing.T) {
	kek := testKey(3)
	secret := testBytes(4, 32)
	aad := []byte("umk/password/u1")
	w := WrapKey(kek, secret, aad)

	tests := []struct {
		name    string
		kek     Key
		wrapped []byte
		aad     []byte
	}{
		{"wrong key", testKey(4), w, aad},
		{"wrong aad", kek, w, []byte("umk/password/u2")},
		{"missing aad", kek, w, nil},
		{"extra aad", kek, w, append(bytes.Clone(aad), 0)},
		{"empty", kek, nil, aad},
		{"version only", kek, w[:1], aad},
		{"no tag", kek, w[:WrapOverhead-1], aad},
		{"truncated by one", kek, w[:len(w)-1], aad},
		{"extended by one", kek, append(bytes.Clone(w), 0), aad},
		{"version 0", kek, flipped(w, 0, 1), aad},
		{"version 2", kek, flipped(w, 0, 3), aad},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := UnwrapKey(tc.kek, tc.wrapped, tc.aad)
			mustDecryptErr(t, err, "UnwrapKey")
			if got != nil {
				t.Fatalf("returned data %x with the error", got)
			}
		})
	}
	t.Run("every byte flipped", func(t *testing.T) {
		for i := range w {
			for _, mask := range []byte{0x01, 0x80, 0xff} {
				got, err := UnwrapKey(kek, flipped(w, i, mask), aad)
				mustDecryptErr(t, err, fmt.Sprintf("byte %d ^ %#x", i, mask))
				if got != nil {
					t.Fatalf("byte %d: returned data", i)
				}
			}
		}
	})
	t.Run("not a record", func(t *testing.T) {
		// Same key and same bytes as AAD content must still not cross formats.
		rc := NewRecordCipher(kek, "u1")
		if _, err := UnwrapKey(kek, rc.Seal("b", []byte("k"), secret), aad); err == nil {
			t.Fatal("a sealed record unwrapped as a key")
		}
	})
}

func TestNewToken(t *testing.T) {
	tests := []struct {
		nbytes, chars, groups int
	}{
		{16, 26, 7},
		{20, 32, 8},
		{32, 52, 13},
	}
	for _, tc := range tests {
		tok := NewToken(tc.nbytes)
		groups := strings.Split(tok, "-")
		if len(groups) != tc.groups {
			t.Errorf("NewToken(%d) = %q: %d groups, want %d", tc.nbytes, tok, len(groups), tc.groups)
		}
		for i, g := range groups {
			if len(g) != 4 && !(i == len(groups)-1 && len(g) > 0 && len(g) < 4) {
				t.Errorf("NewToken(%d) = %q: group %q", tc.nbytes, tok, g)
			}
		}
		norm := NormalizeToken(tok)
		if len(norm) != tc.chars {
			t.Errorf("NewToken(%d) has %d characters, want %d", tc.nbytes, len(norm), tc.chars)
		}
		if strings.Trim(norm, "abcdefghijklmnopqrstuvwxyz234567") != "" {
			t.Errorf("NewToken(%d) = %q uses characters outside lowercase base32", tc.nbytes, tok)
		}
		raw, err := tokenEncoding.DecodeString(strings.ToUpper(norm))
		if err != nil || len(raw) != tc.nbytes {
			t.Errorf("NewToken(%d) does not decode to %d bytes: %v", tc.nbytes, tc.nbytes, err)
		}
		if NewToken(tc.nbytes) == tok {
			t.Errorf("NewToken(%d) repeated", tc.nbytes)
		}
	}
	for _, n := range []int{-1, 0, 15} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewToken(%d) did not panic", n)
				}
			}()
			NewToken(n)
		}()
	}
}

func TestNormalizeToken(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abcd-efgh-ijkl", "abcdefghijkl"},
		{"ABCD-EFGH-IJKL", "abcdefghijkl"},
		{"abcd efgh ijkl", "abcdefghijkl"},
		{" AbCd - eFgH\tijkl\n", "abcdefghijkl"},
		{"abcdefghijkl", "abcdefghijkl"},
		{"", ""},
		{"----", ""},
	}
	for _, tc := range tests {
		if got := NormalizeToken(tc.in); got != tc.want {
			t.Errorf("NormalizeToken(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	tok := NewToken(20)
	if NormalizeToken(strings.ToUpper(strings.ReplaceAll(tok, "-", " "))) != NormalizeToken(tok) {
		t.Error("token typed in upper case with spaces does not normalize to the same value")
	}
}
