package store

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"kreide/crypto"
)

// inlineMax is the largest encrypted content kept inside store.db; larger
// content goes to its own file under blobs/.
const inlineMax = 64 << 10

// blobRef names encrypted content: inline in the bodies bucket or in a file.
// The content key is not here: its wrap lives in the referencing record, so
// re-wrapping it (after a locked delivery) is one small bbolt write.
type blobRef struct {
	ID      [16]byte
	Inline  bool
	EncSize int64
}

func newBlobID() (id [16]byte) {
	rand.Read(id[:])
	return id
}

func (h *handle) blobPath(id [16]byte) string {
	s := hex.EncodeToString(id[:])
	return filepath.Join(h.dir, "blobs", s[:2], s)
}

// blobWriter encrypts content as it streams in. Small content stays in
// memory and is stored inline; beyond inlineMax it spills to its file.
type blobWriter struct {
	h    *handle
	ref  blobRef
	buf  []byte
	f    *os.File
	sw   io.WriteCloser
	size int64 // plaintext bytes
	err  error
}

func (h *handle) newBlobWriter(key crypto.Key) *blobWriter {
	w := &blobWriter{h: h, ref: blobRef{ID: newBlobID()}}
	w.sw = crypto.NewStreamWriter(spill{w}, key)
	return w
}

type spill struct{ w *blobWriter }

func (s spill) Write(p []byte) (int, error) {
	w := s.w
	if w.f == nil && len(w.buf)+len(p) <= inlineMax {
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	if w.f == nil {
		path := w.h.blobPath(w.ref.ID)
		dir := filepath.Dir(path)
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return 0, err
			}
			if err := syncDir(filepath.Dir(dir)); err != nil {
				return 0, err
			}
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return 0, err
		}
		w.f = f
		if _, err := f.Write(w.buf); err != nil {
			return 0, err
		}
		w.buf = nil
	}
	return w.f.Write(p)
}

func (w *blobWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.sw.Write(p)
	w.size += int64(n)
	w.err = err
	return n, err
}

// finish makes the content durable: a file is fsynced with its directory
// before any record points at it.
func (w *blobWriter) finish() (blobRef, []byte, error) {
	if w.err != nil {
		w.abort()
		return blobRef{}, nil, w.err
	}
	if err := w.sw.Close(); err != nil {
		w.abort()
		return blobRef{}, nil, err
	}
	if w.f == nil {
		w.ref.Inline = true
		w.ref.EncSize = int64(len(w.buf))
		return w.ref, w.buf, nil
	}
	st, err := w.f.Stat()
	if err == nil {
		w.ref.EncSize = st.Size()
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(w.h.blobPath(w.ref.ID)))
	}
	if err != nil {
		os.Remove(w.h.blobPath(w.ref.ID))
		return blobRef{}, nil, err
	}
	return w.ref, nil, nil
}

func (w *blobWriter) abort() {
	if w.f != nil {
		w.f.Close()
		os.Remove(w.h.blobPath(w.ref.ID))
		w.f = nil
	}
}

// putBlob records content in the transaction that references it.
func putBlob(tx *bolt.Tx, ref blobRef, inline []byte) error {
	if ref.Inline {
		return tx.Bucket(bktBodies).Put(ref.ID[:], inline)
	}
	return tx.Bucket(bktBlobFiles).Put(ref.ID[:], []byte{1})
}

// deleteBlob removes the record; the file is unlinked after commit
// (record first, then file: a crash leaves an orphan, never a dangling ref).
func deleteBlob(tx *bolt.Tx, ref blobRef) error {
	if ref.Inline {
		return tx.Bucket(bktBodies).Delete(ref.ID[:])
	}
	return tx.Bucket(bktBlobFiles).Delete(ref.ID[:])
}

func (h *handle) unlinkBlobs(refs []blobRef) {
	h.pinMu.Lock()
	defer h.pinMu.Unlock()
	for _, r := range refs {
		if r.Inline {
			continue
		}
		if h.pins > 0 {
			h.deferred = append(h.deferred, h.blobPath(r.ID))
		} else {
			os.Remove(h.blobPath(r.ID))
		}
	}
}

// copyBlob duplicates content under a new id: a hard link for files (no
// copy of the bytes), a copy for inline content. The copy is durable on return.
func (h *handle) copyBlob(tx *bolt.Tx, src blobRef) (blobRef, []byte, error) {
	dst := blobRef{ID: newBlobID(), Inline: src.Inline, EncSize: src.EncSize}
	if src.Inline {
		v := tx.Bucket(bktBodies).Get(src.ID[:])
		if v == nil {
			return dst, nil, ErrNotFound
		}
		return dst, bytes.Clone(v), nil
	}
	dp := h.blobPath(dst.ID)
	if err := os.MkdirAll(filepath.Dir(dp), 0o700); err != nil {
		return dst, nil, err
	}
	if err := os.Link(h.blobPath(src.ID), dp); err != nil {
		return dst, nil, err
	}
	return dst, nil, syncDir(filepath.Dir(dp))
}

// BlobReader reads decrypted content; it can seek (partial FETCH, Range).
type BlobReader struct {
	*crypto.StreamReader
	f *os.File
}

// Close releases the file, if any.
func (r *BlobReader) Close() error {
	if r.f != nil {
		return r.f.Close()
	}
	return nil
}

func (h *handle) openBlob(tx *bolt.Tx, ref blobRef, key crypto.Key) (*BlobReader, error) {
	if ref.Inline {
		v := tx.Bucket(bktBodies).Get(ref.ID[:])
		if v == nil {
			return nil, ErrNotFound
		}
		v = bytes.Clone(v)
		sr, err := crypto.NewStreamReader(bytes.NewReader(v), int64(len(v)), key)
		if err != nil {
			return nil, err
		}
		return &BlobReader{StreamReader: sr}, nil
	}
	f, err := os.Open(h.blobPath(ref.ID))
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	sr, err := crypto.NewStreamReader(f, st.Size(), key)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &BlobReader{StreamReader: sr, f: f}, nil
}

// sweepOrphans removes blob files that no record references: left by a crash
// between writing a file and committing its record. Files newer than the
// handle are skipped: they may be writes in progress.
func (h *handle) sweepOrphans(opened time.Time, stop <-chan struct{}) {
	root := filepath.Join(h.dir, "blobs")
	var orphans []string
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		select {
		case <-stop: // the store is closing
			orphans = nil
			return filepath.SkipAll
		default:
		}
		if err != nil || d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil || !info.ModTime().Before(opened.Add(-time.Minute)) {
			return nil
		}
		id, err := hex.DecodeString(d.Name())
		if err != nil || len(id) != 16 {
			return nil
		}
		var known bool
		err = h.db.View(func(tx *bolt.Tx) error {
			known = tx.Bucket(bktBlobFiles).Get(id) != nil
			return nil
		})
		if err == nil && !known {
			orphans = append(orphans, path)
		}
		return nil
	})
	for _, p := range orphans {
		os.Remove(p)
	}
}
