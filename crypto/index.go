package crypto

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
)

// BlindSize is the length of a blind index value.
const BlindSize = 16

// Blind computes a blind index: HMAC-SHA256 under key (the user's
// UserKeys.Index) over domain || 0x00 || data, truncated to 16 bytes. It
// turns a secret lookup value (a folder name, a Message-ID, a path) into an
// opaque bbolt key that is stable for equal inputs but reveals nothing about
// them. domain separates the uses ("mailbox", "message-id", ...) so equal
// strings in different roles do not collide; it must not contain a NUL byte
// (that would make the encoding ambiguous) and Blind panics if it does.
//
// 128 bits are plenty: collisions among one user's values (2^-64 after 2^32
// of them) are negligible and nothing but the key can be used to find one.
// Note that a blind index leaks equality, which is its purpose.
func Blind(key Key, domain string, data []byte) []byte {
	if strings.IndexByte(domain, 0) >= 0 {
		panic("crypto: Blind domain contains a NUL byte")
	}
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(domain))
	m.Write([]byte{0})
	m.Write(data)
	return m.Sum(make([]byte, 0, sha256.Size))[:BlindSize:BlindSize]
}
