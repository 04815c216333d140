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
type KEMPrivateKey struct {
	sk hpke.PrivateKey
}

// ParseKEMPrivateKey parses a private key returned by GenerateKEMKey (after
// UnwrapKey).
func ParseKEMPrivateKey(b []byte) (*KEMPrivateKey, error) {
	sk, err := hpkeKEM.NewPrivateKey(b)
	if err != nil {
		return nil, errors.New("crypto: invalid KEM private key: " + err.Error())
	}
	return &KEMPrivateKey{sk: sk}, nil
}

// PublicKey returns the matching public key.
func (k *KEMPrivateKey) PublicKey() *KEMPublicKey {
	return &KEMPublicKey{pk: k.sk.PublicKey()}
}

// Open decrypts a message sealed by KEMPublicKey.Seal with the same info. It
// returns ErrDecrypt on any failure.
func (k *KEMPrivateKey) Open(info, sealed []byte) ([]byte, error) {
	if len(sealed) < KEMSealOverhead {
		return nil, ErrDecrypt
	}
	pt, err := hpke.Open(k.sk, hpkeKDF, hpkeAEAD, info, sealed)
	if err != nil {
		return nil, ErrDecrypt
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}
