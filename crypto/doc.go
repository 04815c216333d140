// Package crypto holds kreide's at-rest cryptography: the key hierarchy,
// encryption of bbolt records and blob files, blind indexes, and the
// public-key path that lets mail arrive while its owner is logged out. It
// uses only the Go standard library and golang.org/x/crypto.
//
// # Key hierarchy
//
//	password ──Argon2id(params, salt)──► KEK ──┐
//	app password / recovery code ─HKDF─► KEK ──┼─ WrapKey ─► UMK (32 random bytes, never changes)
//	                                           │
//	UMK ──HKDF "kreide/v1/record"─► Record key: RecordCipher (bbolt values)
//	    ──HKDF "kreide/v1/index"──► Index key:  Blind (opaque bbolt keys)
//	    ──HKDF "kreide/v1/blob"───► Blob key:   WrapKey(per-blob content key)
//	    ──WrapKey──────────────────► private KEM key (MLKEM768-X25519)
//	public KEM key (in clear) ──HPKE Seal──► per-blob content keys of mail delivered while locked
//	content key ──STREAM, AES-256-GCM──► blob file body
//
// Each user has a user master key (UMK): 32 random bytes made once by NewKey
// and never changed. Every credential holds one copy of it, wrapped by
// WrapKey under a key-encryption key (KEK) derived from that credential:
//
//   - a password goes through Argon2id (Argon2Params.DeriveKEK; by default
//     t=3, 64 MiB, 4 lanes, 16-byte random salt, parameters stored with the
//     wrap), because passwords are low-entropy and every guess must be made
//     expensive;
//   - an app password or a recovery code is a random token of at least 128
//     bits (NewToken), so TokenKEK uses plain HKDF-SHA256: stretching would
//     add nothing against guessing and would make every IMAP connection of a
//     phone pay 90 ms.
//
// Changing a password rewraps the UMK and touches nothing else; revoking an
// app password deletes its wrap. Pass the wrap's purpose and owner as the
// associated data of WrapKey so a wrap cannot be moved to another slot.
//
// From the UMK, DeriveUserKeys derives (HKDF-SHA256, one info label each)
// the record, index and blob keys, so that each key has one job and one
// primitive.
//
// # Records
//
// RecordCipher seals bbolt values with XChaCha20-Poly1305:
// version (1) || nonce (24) || ciphertext || tag (16). The associated data is
// a length-prefixed encoding of account id, bucket and key, so a value that
// is moved, swapped or copied to another place fails to open. XChaCha20's
// 192-bit nonces can be drawn at random for the life of the key without any
// counter to keep, and the cipher is fast in software.
//
// # Blind indexes
//
// bbolt keys are stored in clear, so names, Message-IDs and paths used as
// keys are replaced by Blind: HMAC-SHA256(index key, domain || 0 || value)
// truncated to 128 bits. Equal values give equal keys (that is the point and
// the only leak); nothing else about the value can be learnt without the key.
//
// # Blobs
//
// Message bodies and files are streams. Each blob has its own random content
// key, which the store keeps in the blob's header wrapped under the blob key
// (WrapKey) or, for mail delivered while the user is logged out, sealed to
// the user's public key. After the header comes a STREAM (NewStreamWriter):
// 64 KiB chunks, each sealed with AES-256-GCM under the nonce
// 0^24 || chunk index (64-bit big-endian) || last-chunk flag, each followed by
// its tag. The index catches reordering, the flag catches truncation and
// appended chunks, and fixed-size chunks make seeking possible (IMAP partial
// FETCH, HTTP Range) while reading authenticates one chunk at a time. AES-GCM
// is used here because it is hardware-accelerated on the bulk path, and
// deterministic nonces are safe because a content key encrypts exactly one
// stream once.
//
// # Delivery while locked
//
// Each user has a KEM key pair (GenerateKEMKey): MLKEM768-X25519 ("X-Wing"),
// a hybrid that stays secure if either ML-KEM-768 or X25519 does, so mail
// recorded today is not exposed to a future quantum computer. The private key
// is wrapped under the UMK; the public key is stored in clear. Incoming mail
// for a logged-out user is written as a blob under a fresh content key, and
// the content key is sealed with HPKE (RFC 9180, KDF HKDF-SHA256, AEAD
// AES-256-GCM) to the public key. At the next unlock the content key is
// opened once and rewrapped under the blob key. An unwrapped private key is
// held as its 32-byte seed and expanded (about 8 KiB) only while it opens
// something (KEMPrivateKey, KEMPrivateKey.Expand).
//
// # Rules for callers
//
//   - A content key encrypts exactly one stream, once: the chunk nonces are
//     counters, so reusing a key for a second stream (even a rewrite of the
//     same blob) would reuse nonces and break AES-GCM. Rewriting a blob means
//     a new NewKey.
//   - Use associated data (WrapKey's aad, KEMPublicKey.Seal's info) that names
//     what is wrapped and for whom (user id, blob id), so that wraps and
//     sealed keys cannot be swapped between slots.
//   - Authentication proves a value was written by the key holder for that
//     place; it cannot tell an old value from the current one. Rollback of a
//     whole file or record is outside what this package detects.
//   - Argon2 parameters read from disk should be checked with
//     Argon2Params.Validate; DeriveKEK panics on invalid ones.
//
// # Errors
//
// Every authentication failure is ErrDecrypt (possibly wrapped): the package
// never says whether the key or the data was wrong.
package crypto
