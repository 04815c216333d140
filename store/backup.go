package store

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"

	"kreide/crypto"
)

// Backup writes a consistent snapshot of the data dir to dst (which must not
// exist or be empty) while the server keeps serving. Everything stays
// encrypted as it is on disk. Each database is copied inside one read
// transaction; blob files are immutable once written, and while an account
// is being copied its unlinks are deferred, so every blob its snapshot
// references is still there to copy.
func (d *Directory) Backup(ctx context.Context, dst string) error {
	if err := emptyDir(dst); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dst, "users"), 0o700); err != nil {
		return err
	}
	accounts, err := d.Accounts(ctx)
	if err != nil {
		return err
	}
	// Accounts first, then system.db: a snapshot of the directory never
	// names an account whose store is missing from the backup (an account
	// created in between is simply absent from both).
	for _, a := range accounts {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := d.backupAccount(a.ID, filepath.Join(dst, "users", a.ID)); err != nil {
			return fmt.Errorf("backup %s: %w", a.Login, err)
		}
	}
	err = d.view(func(tx *bolt.Tx) error {
		return tx.CopyFile(filepath.Join(dst, "system.db"), 0o600)
	})
	if err != nil {
		return err
	}
	for _, name := range []string{serverKeyFile} {
		if err := copyFile(filepath.Join(d.dir, name), filepath.Join(dst, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := CopyTree(filepath.Join(d.dir, queueDir), filepath.Join(dst, queueDir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(dst)
}

func (d *Directory) backupAccount(id, dst string) error {
	h, err := d.pool.acquire(id)
	if err != nil {
		return err
	}
	defer d.pool.release(h)
	h.pinBlobs()
	defer h.unpinBlobs()
	if err := os.MkdirAll(filepath.Join(dst, "blobs"), 0o700); err != nil {
		return err
	}
	var ids [][16]byte
	err = h.db.View(func(tx *bolt.Tx) error {
		if err := tx.CopyFile(filepath.Join(dst, "store.db"), 0o600); err != nil {
			return err
		}
		return tx.Bucket(bktBlobFiles).ForEach(func(k, _ []byte) error {
			var id [16]byte
			copy(id[:], k)
			ids = append(ids, id)
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, id := range ids {
		s := hex.EncodeToString(id[:])
		to := filepath.Join(dst, "blobs", s[:2], s)
		if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
			return err
		}
		if err := copyFile(h.blobPath(id), to); err != nil {
			return err
		}
	}
	return nil
}

// pinBlobs defers unlinking of blob files until unpinBlobs (for backups).
func (h *handle) pinBlobs() {
	h.pinMu.Lock()
	h.pins++
	h.pinMu.Unlock()
}

func (h *handle) unpinBlobs() {
	h.pinMu.Lock()
	h.pins--
	var todo []string
	if h.pins == 0 {
		todo, h.deferred = h.deferred, nil
	}
	h.pinMu.Unlock()
	for _, p := range todo {
		os.Remove(p)
	}
}

// Restore copies a backup made by Backup into dir, which must be empty or
// absent, after checking the backup's structure (Verify).
func Restore(ctx context.Context, backup, dir string) error {
	if err := Verify(ctx, backup); err != nil {
		return fmt.Errorf("backup %s is damaged: %w", backup, err)
	}
	if err := emptyDir(dir); err != nil {
		return err
	}
	if err := CopyTree(backup, dir); err != nil {
		return err
	}
	return syncDir(dir)
}

func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%w: %s is not empty", ErrExists, dir)
	}
	return nil
}

// Verify checks the structure of a data dir (or a backup) without any key
// and without opening it for writing: every database passes bbolt's check,
// every account in system.db has its store, every message record decodes and
// its content exists with a valid encrypted length, and mailbox counters
// match their messages. It must not run on a data dir a server is using.
func Verify(ctx context.Context, dir string) error {
	sys, err := bolt.Open(filepath.Join(dir, "system.db"), 0o600, &bolt.Options{ReadOnly: true, Timeout: 1})
	if err != nil {
		return fmt.Errorf("system.db: %w", err)
	}
	defer sys.Close()
	var errs []error
	var ids []string
	sys.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			errs = append(errs, fmt.Errorf("system.db: %w", err))
		}
		if b := tx.Bucket(bktAccounts); b != nil {
			b.ForEach(func(k, _ []byte) error {
				ids = append(ids, string(k))
				return nil
			})
		} else {
			errs = append(errs, errors.New("system.db: no accounts bucket"))
		}
		return nil
	})
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := verifyAccount(filepath.Join(dir, "users", id)); err != nil {
			errs = append(errs, fmt.Errorf("account %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

func verifyAccount(dir string) error {
	db, err := bolt.Open(filepath.Join(dir, "store.db"), 0o600, &bolt.Options{ReadOnly: true, Timeout: 1})
	if err != nil {
		return err
	}
	defer db.Close()
	var errs []error
	db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		for _, b := range mailBuckets {
			if tx.Bucket(b) == nil {
				errs = append(errs, fmt.Errorf("bucket %s missing", b))
			}
		}
		if len(errs) > 0 {
			return nil
		}
		counts := map[uint32]uint32{}
		tx.Bucket(bktMsgs).ForEach(func(k, v []byte) error {
			rec, err := unmarshalMsgRecord(v)
			if err != nil || len(k) != 8 {
				errs = append(errs, fmt.Errorf("message %x: %w", k, errBadRecord))
				return nil
			}
			counts[binary.BigEndian.Uint32(k)]++
			if err := verifyContent(tx, dir, rec.Blob); err != nil {
				errs = append(errs, fmt.Errorf("message %x: %w", k, err))
			}
			if tx.Bucket(bktStructs).Get(rec.Blob.ID[:]) == nil {
				errs = append(errs, fmt.Errorf("message %x: structure missing", k))
			}
			return nil
		})
		// Every registered blob file (messages, DAV objects, files) exists
		// and has a valid encrypted length.
		tx.Bucket(bktBlobFiles).ForEach(func(k, _ []byte) error {
			s := hex.EncodeToString(k)
			if len(k) != 16 {
				errs = append(errs, fmt.Errorf("blob %s: bad id", s))
				return nil
			}
			st, err := os.Stat(filepath.Join(dir, "blobs", s[:2], s))
			if err == nil {
				_, err = crypto.PlainSize(st.Size())
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("blob %s: %w", s, err))
			}
			return nil
		})
		tx.Bucket(bktMailboxes).ForEach(func(k, v []byte) error {
			r := new(mailboxRecord)
			if err := json.Unmarshal(v, r); err != nil {
				errs = append(errs, fmt.Errorf("mailbox %x: %w", k, err))
				return nil
			}
			if n := counts[binary.BigEndian.Uint32(k)]; n != r.Messages {
				errs = append(errs, fmt.Errorf("mailbox %x: counts %d messages, has %d", k, r.Messages, n))
			}
			return nil
		})
		return nil
	})
	return errors.Join(errs...)
}

// verifyContent checks that content exists and has a valid encrypted length.
func verifyContent(tx *bolt.Tx, dir string, ref blobRef) error {
	size := ref.EncSize
	if ref.Inline {
		v := tx.Bucket(bktBodies).Get(ref.ID[:])
		if v == nil {
			return errors.New("inline content missing")
		}
		size = int64(len(v))
	} else {
		if tx.Bucket(bktBlobFiles).Get(ref.ID[:]) == nil {
			return errors.New("blob not registered")
		}
		s := hex.EncodeToString(ref.ID[:])
		st, err := os.Stat(filepath.Join(dir, "blobs", s[:2], s))
		if err != nil {
			return err
		}
		if st.Size() != ref.EncSize {
			return fmt.Errorf("blob is %d bytes, want %d", st.Size(), ref.EncSize)
		}
	}
	_, err := crypto.PlainSize(size)
	return err
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// CopyTree copies the directories and regular files under src to dst (not
// lock files or sockets) and syncs them, each directory after its entries;
// dst must not hold any of the files yet.
func CopyTree(src, dst string) error {
	var dirs []string
	err := filepath.WalkDir(src, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		switch {
		case de.IsDir():
			dirs = append(dirs, to)
			return os.MkdirAll(to, 0o700)
		case de.Type().IsRegular() && de.Name() != "lock":
			return copyFile(path, to)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syncDir(dirs[i]); err != nil {
			return err
		}
	}
	return syncDir(filepath.Dir(dst))
}
