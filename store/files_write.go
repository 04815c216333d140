package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"kreide/crypto"
)

// FileCreateOptions control an upload.
type FileCreateOptions struct {
	ContentType string // kept with the file; "" keeps the previous one
	// ExpectedSize > 0 is checked against the quota before any byte is
	// written (HTTP Content-Length), so an upload that cannot fit fails early.
	ExpectedSize int64
	// IfMatch, when set, commits only if the file's current ETag is this
	// ("*": only if a file exists). IfNoneMatch commits only if nothing
	// exists at the path. Failures give ErrModified.
	IfMatch     string
	IfNoneMatch bool
	Tokens      []string // lock tokens the client submitted
}

// FileWriter streams a new version of a file. Nothing is visible until
// Commit; Abort (or a crash) leaves the previous version as it was.
type FileWriter struct {
	a    *Account
	path filePath
	o    FileCreateOptions
	key  crypto.Key
	bw   *blobWriter
	room int64 // bytes the quota allows, measured at Create
	n    int64
	err  error
	done bool
}

// Create starts writing the file at p. Its parent folder must exist; a
// folder at p gives ErrFileIsFolder. Locks, preconditions and the quota are
// checked now, so a doomed upload fails before its body is read, and again
// at Commit. Every write gets a new content key.
func (f *Files) Create(ctx context.Context, p string, o FileCreateOptions) (*FileWriter, error) {
	a := f.a
	fp, err := parseFilePath(p)
	if err != nil {
		return nil, err
	}
	var room int64
	err = a.view(func(tx *bolt.Tx) error {
		parents, target, err := a.walkParent(tx, fp)
		if err != nil {
			return err
		}
		if err := a.checkWrite(tx, parents, target, o, time.Now()); err != nil {
			return err
		}
		used := int64(getUint64(tx.Bucket(bktAcctMeta).Get(metaUsed)))
		room = a.h.quota.Load() - used
		if target != nil {
			room += target.Size
		}
		if o.ExpectedSize > room {
			return ErrOverQuota
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	key := crypto.NewKey()
	return &FileWriter{a: a, path: fp, o: o, key: key, bw: a.h.newBlobWriter(key), room: room}, nil
}

// checkWrite checks what replacing (or creating) target needs: it is not a
// folder, the preconditions hold and its locks (or its parent's, for a new
// file) were submitted.
func (a *Account) checkWrite(tx *bolt.Tx, parents []*fileNode, target *fileNode, o FileCreateOptions, now time.Time) error {
	if target == nil {
		if o.IfMatch != "" {
			return ErrModified
		}
		return a.mayChange(tx, parents, o.Tokens, now)
	}
	if target.Dir {
		return ErrFileIsFolder
	}
	if o.IfNoneMatch || o.IfMatch != "" && o.IfMatch != "*" && o.IfMatch != target.info().ETag {
		return ErrModified
	}
	return a.mayChange(tx, append(parents, target), o.Tokens, now)
}

// Write encrypts p into the new version. Past the quota it fails with
// ErrOverQuota.
func (w *FileWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, ErrClosed
	}
	if w.n+int64(len(p)) > w.room {
		w.err = ErrOverQuota
		return 0, w.err
	}
	n, err := w.bw.Write(p)
	w.n += int64(n)
	if err != nil {
		w.err = err
	}
	return n, err
}

// Written is the number of bytes written so far.
func (w *FileWriter) Written() int64 { return w.n }

// Abort drops the new version. It is safe to call after Commit.
func (w *FileWriter) Abort() {
	if !w.done {
		w.done = true
		w.bw.abort()
	}
}

// Commit makes the new version durable and then visible in one transaction:
// created says the file did not exist before. On error the previous version
// is untouched.
func (w *FileWriter) Commit(ctx context.Context) (fi FileInfo, created bool, err error) {
	if w.done {
		return FileInfo{}, false, ErrClosed
	}
	if w.err != nil {
		w.Abort()
		return FileInfo{}, false, w.err
	}
	w.done = true
	a := w.a
	ref, inline, err := w.bw.finish() // content durable before anything points at it
	if err != nil {
		return FileInfo{}, false, err
	}
	wrapped := crypto.WrapKey(a.keys.Blob, w.key[:], fileContentAAD(a.id, ref.ID))
	var old []blobRef
	// batch: concurrent uploads to one account share a commit and its fsync.
	err = a.batch(func(tx *bolt.Tx) error {
		old = nil
		now := time.Now()
		parents, target, err := a.walkParent(tx, w.path)
		if err != nil {
			return err
		}
		if err := a.checkWrite(tx, parents, target, w.o, now); err != nil {
			return err
		}
		modseq := nextModSeq(tx)
		n := target
		if n == nil {
			id, err := newNodeID(tx)
			if err != nil {
				return err
			}
			n = &fileNode{ID: id, Parent: parents[len(parents)-1].ID, Created: now, Name: w.path[len(w.path)-1]}
			if err := a.linkChild(tx, n); err != nil {
				return err
			}
			if err := a.touchDir(tx, parents[len(parents)-1], modseq, now); err != nil {
				return err
			}
		} else if n.HasBlob {
			if err := deleteBlob(tx, n.Blob); err != nil {
				return err
			}
			old = append(old, n.Blob)
		}
		if err := a.h.charge(tx, w.n-n.Size); err != nil {
			return err
		}
		n.Size, n.Modified, n.Version, n.LockNull = w.n, now, modseq, false
		n.Blob, n.HasBlob, n.Key = ref, true, wrapped
		if w.o.ContentType != "" {
			n.CType = w.o.ContentType
		}
		if err := a.putNode(tx, n); err != nil {
			return err
		}
		if err := putBlob(tx, ref, inline); err != nil {
			return err
		}
		fi, created = n.info(), target == nil
		return fileChange(tx, modseq, ChangeObjectPut, n.ID)
	})
	if err != nil {
		a.h.unlinkBlobs([]blobRef{ref})
		return FileInfo{}, false, err
	}
	a.h.unlinkBlobs(old)
	return fi, created, nil
}

// Open opens the file at p for reading; the reader can seek (HTTP Range).
// It reads the version current at Open even if a new one is committed
// meanwhile. Close it when done.
func (f *Files) Open(ctx context.Context, p string) (*BlobReader, FileInfo, error) {
	a := f.a
	fp, err := parseFilePath(p)
	if err != nil {
		return nil, FileInfo{}, err
	}
	var br *BlobReader
	var fi FileInfo
	err = a.view(func(tx *bolt.Tx) error {
		chain, err := a.walk(tx, fp)
		if err != nil {
			return err
		}
		n := chain[len(chain)-1]
		if n.Dir {
			return ErrFileIsFolder
		}
		if !n.HasBlob {
			return fmt.Errorf("%w: file without content", errBadRecord)
		}
		key, err := a.unwrapFileKey(n)
		if err != nil {
			return err
		}
		if br, err = a.h.openBlob(tx, n.Blob, key); err != nil {
			return err
		}
		fi = n.info()
		return nil
	})
	return br, fi, err
}

// emptyBlob makes the content of an empty file (inline: no file I/O).
func (a *Account) emptyBlob() (blobRef, []byte, []byte, error) {
	key := crypto.NewKey()
	bw := a.h.newBlobWriter(key)
	ref, inline, err := bw.finish()
	if err != nil {
		return blobRef{}, nil, nil, err
	}
	if !ref.Inline {
		bw.abort()
		return blobRef{}, nil, nil, errors.New("store: empty blob not inline")
	}
	return ref, inline, crypto.WrapKey(a.keys.Blob, key[:], fileContentAAD(a.id, ref.ID)), nil
}
