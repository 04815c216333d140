package crypto

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// Key is a 256-bit symmetric key.
type Key [32]byte

// NewKey returns a fresh random key from crypto/rand.
func NewKey() Key {
	var k Key
	rand.Read(k[:]) // never returns an error; crashes the program if the OS has no randomness
	return k
}

// KeyFromBytes converts a 32-byte secret (for example the result of
// UnwrapKey) into a Key.
func KeyFromBytes(b []byte) (Key, error) {
	var k Key
	if len(b) != len(k) {
		return k, errors.New("crypto: a key must be 32 bytes")
	}
	copy(k[:], b)
	return k, nil
}

// String redacts the key so that it does not end up in logs by accident.
func (Key) String() string { return "crypto.Key(redacted)" }

// GoString redacts the key for %#v as well.
func (Key) GoString() string { return "crypto.Key(redacted)" }

// HKDF info labels. They are part of the on-disk format: never change them.
const (
	labelRecord   = "kreide/v1/record"
	labelIndex    = "kreide/v1/index"
	labelBlob     = "kreide/v1/blob"
	labelTokenKEK = "kreide/v1/token-kek"
)

// UserKeys are the working keys of one user, all derived from the user master
// key (UMK). See the package documentation.
type UserKeys struct {
	Record Key // XChaCha20-Poly1305 key for bbolt values (RecordCipher)
	Index  Key // HMAC-SHA256 key for blind indexes (Blind)
	Blob   Key // key-wrapping key for per-blob content keys (WrapKey)
}

// DeriveUserKeys derives the record, index and blob keys from the user master
// key with HKDF-SHA256 (no salt: the UMK is uniformly random), one distinct
// info label per key.
func DeriveUserKeys(umk Key) *UserKeys {
	return &UserKeys{
		Record: hkdfKey(umk[:], nil, labelRecord),
		Index:  hkdfKey(umk[:], nil, labelIndex),
		Blob:   hkdfKey(umk[:], nil, labelBlob),
	}
}

func hkdfKey(secret, salt []byte, info string) Key {
	b, err := hkdf.Key(sha256.New, secret, salt, info, 32)
	if err != nil {
		// Only possible in FIPS 140-only mode with a short secret, which
		// kreide does not support (XChaCha20-Poly1305 is not approved either).
		panic("crypto: hkdf: " + err.Error())
	}
	var k Key
	copy(k[:], b)
	return k
}

// Format versions: the first byte of every wrapped key, sealed record and
// the like. Unknown versions fail with ErrDecrypt.
const (
	wrapVersion   = 1
	recordVersion = 1
)

const (
	xNonceSize = chacha20poly1305.NonceSizeX // 24
	tagSize    = 16
	// WrapOverhead is how much longer WrapKey's output is than the secret.
	WrapOverhead = 1 + xNonceSize + tagSize
)

// newXAEAD builds XChaCha20-Poly1305 for key. The only possible error is a
// wrong key length (impossible with Key) or FIPS 140-only mode.
func newXAEAD(key Key) cipher.AEAD {
	a, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		panic("crypto: " + err.Error())
	}
	return a
}

// wrapAAD binds the format version and a fixed domain label to the caller's
// associated data, so that a wrapped key can never be taken for a sealed
// record (or any later format) even if a key were reused by mistake.
func wrapAAD(aad []byte) []byte {
	const domain = "kreide/v1/wrap\x00"
	b := make([]byte, 0, 1+len(domain)+len(aad))
	b = append(b, wrapVersion)
	b = append(b, domain...)
	return append(b, aad...)
}

// WrapKey encrypts a secret (a UMK, a private KEM key, a content key) under a
// key-encryption key with XChaCha20-Poly1305. aad is authenticated but not
// stored: pass the same value to UnwrapKey, typically something naming the
// wrap's purpose and owner ("umk/password/<user id>"), so that a wrap cannot
// be moved to another slot. The output is
//
//	version (1 byte) || random nonce (24 bytes) || ciphertext || tag (16 bytes)
//
// The 192-bit random nonce makes collisions negligible however many wraps one
// KEK makes.
func WrapKey(kek Key, secret, aad []byte) []byte {
	out := make([]byte, 1+xNonceSize, WrapOverhead+len(secret))
	out[0] = wrapVersion
	rand.Read(out[1 : 1+xNonceSize])
	return newXAEAD(kek).Seal(out, out[1:1+xNonceSize], secret, wrapAAD(aad))
}

// UnwrapKey reverses WrapKey. It returns ErrDecrypt on any failure: wrong
// KEK or aad, modified or truncated input, unknown version.
func UnwrapKey(kek Key, wrapped, aad []byte) ([]byte, error) {
	if len(wrapped) < WrapOverhead || wrapped[0] != wrapVersion {
		return nil, ErrDecrypt
	}
	nonce, ct := wrapped[1:1+xNonceSize], wrapped[1+xNonceSize:]
	secret, err := newXAEAD(kek).Open(make([]byte, 0, len(ct)-tagSize), nonce, ct, wrapAAD(aad))
	if err != nil {
		return nil, ErrDecrypt
	}
	return secret, nil
}

// MinTokenBytes is the least entropy NewToken accepts: tokens are turned into
// keys by TokenKEK, which does no key stretching, so they must be
// unguessable on their own.
const MinTokenBytes = 16

var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewToken returns nbytes of crypto/rand randomness as a secret to show to a
// person once (app passwords, recovery codes): lowercase base32 (RFC 4648
// alphabet, no padding) in groups of four characters joined by '-'. For
// example 20 bytes give 32 characters in 8 groups:
//
//	abcd-efgh-ijkl-mnop-qrst-uvwx-yz23-4567
//
// It panics if nbytes < MinTokenBytes (a programming error).
func NewToken(nbytes int) string {
	if nbytes < MinTokenBytes {
		panic("crypto: NewToken needs at least 16 bytes (128 bits)")
	}
	b := make([]byte, nbytes)
	rand.Read(b)
	s := strings.ToLower(tokenEncoding.EncodeToString(b))
	var sb strings.Builder
	sb.Grow(len(s) + len(s)/4)
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			sb.WriteByte('-')
		}
		sb.WriteString(s[i:min(i+4, len(s))])
	}
	return sb.String()
}

// NormalizeToken canonicalizes a token as typed by a person: it lowercases
// ASCII letters and drops '-' and white space, so "ABCD EFGH" and
// "abcd-efgh" are the same token. Feed the normalized string to TokenKEK.
func NormalizeToken(s string) string {
	var sb strings.Builder
	sb.Grow(len(s))
	for _, r := range s {
		switch r {
		case '-', ' ', '\t', '\n', '\r':
			continue
		}
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		sb.WriteRune(r)
	}
	return sb.String()
}
