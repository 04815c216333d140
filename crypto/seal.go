package crypto

import (
	"crypto/hpke"
	"errors"
)

// The HPKE ciphersuite of the public-key path (RFC 9180, base mode):
// MLKEM768-X25519 ("X-Wing", a post-quantum/classical hybrid: secure as long
// as either ML-KEM-768 or X25519 holds), HKDF-SHA256 and AES-256-GCM.
var (
	hpkeKEM  = hpke.MLKEM768X25519()
	hpkeKDF  = hpke.HKDFSHA256()
	hpkeAEAD = hpke.AES256GCM()
)

// Sizes of the MLKEM768-X25519 keys and of the encapsulated key that starts
// every sealed message.
const (
	KEMPublicKeySize  = 1184 + 32 // ML-KEM-768 encapsulation key || X25519 point
	KEMPrivateKeySize = 32        // seed from which both private keys are expanded
	KEMEncSize        = 1088 + 32 // ML-KEM-768 ciphertext || X25519 ephemeral point
	// KEMSealOverhead is how much longer Seal's output is than the plaintext.
	KEMSealOverhead = KEMEncSize + 16
)

// GenerateKEMKey returns a new MLKEM768-X25519 key pair. public is stored in
// clear; private (the 32-byte seed, as serialized by hpke) must be wrapped
// under the user's master key with WrapKey.
func GenerateKEMKey() (public, private []byte, err error) {
	sk, err := hpkeKEM.GenerateKey()
	if err != nil {
		return nil, nil, err
	}
	private, err = sk.Bytes()
	if err != nil {
		return nil, nil, err
	}
	return sk.PublicKey().Bytes(), private, nil
}

// KEMPublicKey seals messages to a user while they are logged out. It is
// safe for concurrent use.
type KEMPublicKey struct {
	pk hpke.PublicKey
}

// ParseKEMPublicKey parses a public key returned by GenerateKEMKey.
func ParseKEMPublicKey(b []byte) (*KEMPublicKey, error) {
	pk, err := hpkeKEM.NewPublicKey(b)
	if err != nil {
		return nil, errors.New("crypto: invalid KEM public key: " + err.Error())
	}
	return &KEMPublicKey{pk: pk}, nil
}

// Bytes returns the serialized public key.
func (k *KEMPublicKey) Bytes() []byte { return k.pk.Bytes() }

// Seal encrypts plaintext (typically a per-blob content key) to the key's
// owner with single-shot HPKE. info is authenticated context that Open must
// repeat, for example "kreide/v1/blob-key/<user id>/<blob id>", so a sealed
// key cannot be moved to another blob or user. The output is
//
//	enc (KEMEncSize bytes) || AES-256-GCM ciphertext || tag (16 bytes)
//
// Each call encapsulates a fresh shared secret, so the output is randomized.
func (k *KEMPublicKey) Seal(info, plaintext []byte) ([]byte, error) {
	return hpke.Seal(k.pk, hpkeKDF, hpkeAEAD, info, plaintext)
}

// KEMPrivateKey opens messages sealed to the user. It is safe for concurrent
// use.
//
// A key from ParseKEMPrivateKey holds only the 32-byte seed and expands it
// into the ML-KEM-768 decapsulation key and the X25519 scalar for each Open
// (SHAKE256 and the ML-KEM key generation, about as much work again as the
// Open itself): the expanded form is about 8 KiB (ML-KEM keeps the public
// matrix and vectors next to the secret), and the store holds one private
// key per unlocked session, most of which never open anything. Expand returns
// a key that keeps the expanded form, for many Opens in a row.
type KEMPrivateKey struct {
	seed [KEMPrivateKeySize]byte
	sk   hpke.PrivateKey // the expanded key (Expand), or nil
}

// ParseKEMPrivateKey parses a private key returned by GenerateKEMKey (after
// UnwrapKey). Every 32-byte string is a valid MLKEM768-X25519 seed, so only
// the length is checked; the caller is expected to have authenticated it
// (UnwrapKey does).
func ParseKEMPrivateKey(b []byte) (*KEMPrivateKey, error) {
	if len(b) != KEMPrivateKeySize {
		return nil, errors.New("crypto: invalid KEM private key: want 32 bytes")
	}
	k := new(KEMPrivateKey)
	copy(k.seed[:], b)
	return k, nil
}

// expanded returns the expanded key: k's own if Expand made it, else a fresh
// one that the caller drops after use.
func (k *KEMPrivateKey) expanded() (hpke.PrivateKey, error) {
	if k.sk != nil {
		return k.sk, nil
	}
	sk, err := hpkeKEM.NewPrivateKey(k.seed[:])
	if err != nil {
		// Not reachable with a 32-byte seed (hpke accepts any).
		return nil, errors.New("crypto: invalid KEM private key: " + err.Error())
	}
	return sk, nil
}

// Expand returns a key that opens without expanding the seed each time, at
// the cost of holding the expanded form (about 8 KiB) for as long as it is
// kept. Use it for a batch of Opens and drop it afterwards.
func (k *KEMPrivateKey) Expand() (*KEMPrivateKey, error) {
	sk, err := k.expanded()
	if err != nil {
		return nil, err
	}
	return &KEMPrivateKey{seed: k.seed, sk: sk}, nil
}

// PublicKey returns the matching public key (expanding the seed).
func (k *KEMPrivateKey) PublicKey() *KEMPublicKey {
	sk, err := k.expanded()
	if err != nil {
		panic(err) // unreachable: any 32-byte seed expands
	}
	return &KEMPublicKey{pk: sk.PublicKey()}
}

// Open decrypts a message sealed by KEMPublicKey.Seal with the same info. It
// returns ErrDecrypt on any failure.
func (k *KEMPrivateKey) Open(info, sealed []byte) ([]byte, error) {
	if len(sealed) < KEMSealOverhead {
		return nil, ErrDecrypt
	}
	sk, err := k.expanded()
	if err != nil {
		return nil, ErrDecrypt
	}
	pt, err := hpke.Open(sk, hpkeKDF, hpkeAEAD, info, sealed)
	if err != nil {
		return nil, ErrDecrypt
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}
