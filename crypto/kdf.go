package crypto

import (
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the Argon2id cost parameters and salt of one password
// wrap. They are stored next to the wrap (as JSON, hence the short tags) so
// that the cost can be raised for new wraps without breaking old ones.
type Argon2Params struct {
	Time      uint32 `json:"t"` // passes over memory
	MemoryKiB uint32 `json:"m"` // memory in KiB
	Threads   uint8  `json:"p"` // parallelism (lanes)
	Salt      []byte `json:"s"` // random, per wrap
}

// Default Argon2id costs: the second recommended option of RFC 9106 §4
// (t=3, 64 MiB), about 90 ms on the 2-core reference machine.
const (
	DefaultArgon2Time      = 3
	DefaultArgon2MemoryKiB = 64 * 1024
	DefaultArgon2Threads   = 4
	argon2SaltSize         = 16
	maxArgon2MemoryKiB     = 4 * 1024 * 1024 // 4 GiB
	maxArgon2Time          = 1000
	minArgon2SaltSize      = 8 // RFC 9106 §3.1
)

// NewArgon2Params returns the default costs with a fresh 16-byte random salt.
func NewArgon2Params() Argon2Params {
	salt := make([]byte, argon2SaltSize)
	rand.Read(salt)
	return Argon2Params{
		Time:      DefaultArgon2Time,
		MemoryKiB: DefaultArgon2MemoryKiB,
		Threads:   DefaultArgon2Threads,
		Salt:      salt,
	}
}

// Validate reports whether the parameters are usable: non-zero time and
// threads, at least 8 KiB of memory per thread, a salt of at least 8 bytes,
// and no absurd costs (memory above 4 GiB, more than 1000 passes) that a
// corrupt record could use to exhaust the server. It checks sanity, not
// strength: tests may use cheap parameters. Call it on parameters read from
// disk before DeriveKEK.
func (p Argon2Params) Validate() error {
	switch {
	case p.Time < 1 || p.Time > maxArgon2Time:
		return fmt.Errorf("crypto: argon2: time %d out of range [1, %d]", p.Time, maxArgon2Time)
	case p.Threads < 1:
		return errors.New("crypto: argon2: threads must be at least 1")
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxArgon2MemoryKiB:
		return fmt.Errorf("crypto: argon2: memory %d KiB out of range [%d, %d]", p.MemoryKiB, 8*uint32(p.Threads), maxArgon2MemoryKiB)
	case len(p.Salt) < minArgon2SaltSize:
		return fmt.Errorf("crypto: argon2: salt of %d bytes is too short", len(p.Salt))
	}
	return nil
}

// DeriveKEK stretches a password into a key-encryption key with Argon2id.
// It panics if p.Validate() fails: wrapping a key under parameters that
// cannot be reproduced would lose the data, so that is a programming error
// (or a corrupt record, which the caller should have validated).
func (p Argon2Params) DeriveKEK(password []byte) Key {
	if err := p.Validate(); err != nil {
		panic(err.Error())
	}
	var k Key
	copy(k[:], argon2.IDKey(password, p.Salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(k))))
	return k
}

// TokenKEK derives a key-encryption key from a high-entropy token (an app
// password or recovery code from NewToken, normalized with NormalizeToken)
// with HKDF-SHA256. No stretching is needed: the token carries at least 128
// bits of entropy, so a guess costs as much as a guess of the key itself, and
// logins with app passwords stay cheap. salt is random per wrap and stored
// with it.
func TokenKEK(token []byte, salt []byte) Key {
	return hkdfKey(token, salt, labelTokenKEK)
}
