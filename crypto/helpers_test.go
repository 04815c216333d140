package crypto

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// testBytes returns n deterministic pseudo-random bytes (distinct per seed).
func testBytes(seed uint64, n int) []byte {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	r := rand.NewChaCha8(s)
	b := make([]byte, n)
	r.Read(b)
	return b
}

// testKey returns a fixed key for tests that need determinism.
func testKey(seed byte) Key {
	var k Key
	for i := range k {
		k[i] = seed + byte(i)
	}
	return k
}

func flipped(b []byte, i int, mask byte) []byte {
	c := bytes.Clone(b)
	c[i] ^= mask
	return c
}

func mustDecryptErr(t *testing.T, err error, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want ErrDecrypt", what)
	}
	if !errors.Is(err, ErrDecrypt) {
		t.Fatalf("%s: error %v, want ErrDecrypt", what, err)
	}
}
