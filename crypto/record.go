package crypto

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"math"
)

// RecordOverhead is how much longer a sealed record is than its plaintext.
const RecordOverhead = 1 + xNonceSize + tagSize

// RecordCipher encrypts the values of one account's bbolt database with
// XChaCha20-Poly1305. The associated data binds every value to the account,
// bucket and key it is stored under, so that nobody who can write the
// database file can move, swap or replay values between places: a value
// copied elsewhere fails to open. (Rolling a whole value back to an older
// version of the same place is not detected; that needs the store's own
// counters.)
//
// A RecordCipher is safe for concurrent use.
type RecordCipher struct {
	aead cipher.AEAD
	// prefix is the constant start of the associated data:
	// version || domain || len(accountID) || accountID. Never appended to in
	// place.
	prefix []byte
}

// NewRecordCipher returns a cipher for the account's records under key (the
// user's UserKeys.Record).
func NewRecordCipher(key Key, accountID string) *RecordCipher {
	const domain = "kreide/v1/record\x00"
	p := make([]byte, 0, 1+len(domain)+4+len(accountID))
	p = append(p, recordVersion)
	p = append(p, domain...)
	p = appendField(p, []byte(accountID))
	return &RecordCipher{aead: newXAEAD(key), prefix: p}
}

// appendField appends a 4-byte big-endian length and then b. Length
// prefixes make the encoding of several fields injective: ("ab", "c") and
// ("a", "bc") give different bytes.
func appendField(dst, b []byte) []byte {
	if uint64(len(b)) > math.MaxUint32 {
		panic("crypto: record AAD field longer than 4 GiB")
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

func (c *RecordCipher) aad(bucket string, key []byte) []byte {
	b := make([]byte, 0, len(c.prefix)+8+len(bucket)+len(key))
	b = append(b, c.prefix...)
	b = appendField(b, []byte(bucket))
	return appendField(b, key)
}

// Seal encrypts plaintext, the value stored under key in bucket. bucket
// should name the full bucket path if buckets are nested. The output is
//
//	version (1 byte) || random nonce (24 bytes) || ciphertext || tag (16 bytes)
func (c *RecordCipher) Seal(bucket string, key, plaintext []byte) []byte {
	out := make([]byte, 1+xNonceSize, RecordOverhead+len(plaintext))
	out[0] = recordVersion
	rand.Read(out[1:])
	return c.aead.Seal(out, out[1:], plaintext, c.aad(bucket, key))
}

// Open decrypts a value sealed by Seal for the same account, bucket and key.
// It returns ErrDecrypt on any failure. The result never aliases sealed, so
// sealed may be a bbolt value that is only valid inside its transaction. An
// empty plaintext comes back as a non-nil empty slice.
func (c *RecordCipher) Open(bucket string, key, sealed []byte) ([]byte, error) {
	if len(sealed) < RecordOverhead || sealed[0] != recordVersion {
		return nil, ErrDecrypt
	}
	nonce, ct := sealed[1:1+xNonceSize], sealed[1+xNonceSize:]
	pt, err := c.aead.Open(make([]byte, 0, len(ct)-tagSize), nonce, ct, c.aad(bucket, key))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}
