package store

import (
	bolt "go.etcd.io/bbolt"

	"kreide/crypto"
	"kreide/store/message"
)

// Header cache (issue #8). A message's top-level header block (its bytes
// up to and including the blank line) is kept beside its structure:
//
//	headers    blob id -> header block sealed under the message's content
//	           key (headerAAD), like the structure; created on first write
//
// so that FETCH BODY[HEADER], HEADER.FIELDS and RFC822.HEADER need not
// decrypt the content. It is separate from the structure so that ENVELOPE
// and BODYSTRUCTURE do not pay for it. Messages stored before it, and
// headers longer than maxCachedHeader, have no entry: readers then cut the
// header from the content as before.
var bktHeaders = []byte("headers")

// maxCachedHeader bounds a cached header block: records up to 64 KiB live
// in bbolt (DESIGN.md section 3).
const maxCachedHeader = 64 << 10

func headerAAD(account string, id [16]byte) []byte {
	return append([]byte("header|"+account+"|"), id[:]...)
}

// headerCapture keeps the first maxCachedHeader bytes of a message as it
// streams through parseWhileWriting.
type headerCapture struct{ b []byte }

func (c *headerCapture) Write(p []byte) (int, error) {
	if n := maxCachedHeader - len(c.b); n > 0 {
		c.b = append(c.b, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

// header returns the header block of the parsed message, or nil if it
// was too long to keep.
func (c *headerCapture) header(st *message.Structure) []byte {
	if st.HeaderSize > int64(len(c.b)) {
		return nil
	}
	return append(make([]byte, 0, st.HeaderSize), c.b[:st.HeaderSize]...)
}

// sealHeader seals a header block for blob id under its content key; nil
// (no cache entry) for nil.
func sealHeader(account string, key crypto.Key, id [16]byte, header []byte) []byte {
	if header == nil {
		return nil
	}
	return crypto.WrapKey(key, header, headerAAD(account, id))
}

// putHeader stores a sealed header block (none for nil). Idempotent, as
// Batch requires.
func putHeader(tx *bolt.Tx, id [16]byte, sealed []byte) error {
	if sealed == nil {
		return nil
	}
	b, err := tx.CreateBucketIfNotExists(bktHeaders)
	if err != nil {
		return err
	}
	return b.Put(id[:], sealed)
}

func deleteHeader(tx *bolt.Tx, id [16]byte) error {
	if b := tx.Bucket(bktHeaders); b != nil {
		return b.Delete(id[:])
	}
	return nil
}

// openHeader returns the cached header block of a message, or nil if it
// has none. b is the headers bucket (nil if there is none yet).
func (a *Account) openHeader(b *bolt.Bucket, r *msgRecord, key crypto.Key) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	v := b.Get(r.Blob.ID[:])
	if v == nil {
		return nil, nil
	}
	plain, err := crypto.UnwrapKey(key, v, headerAAD(a.id, r.Blob.ID))
	if err != nil {
		return nil, err
	}
	if plain == nil {
		plain = []byte{} // cached, empty
	}
	return plain, nil
}
