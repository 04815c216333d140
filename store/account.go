package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"

	"kreide/crypto"
)

// Buckets of an account's store.db. See doc.go.
var (
	bktAcctMeta  = []byte("meta")
	bktMailboxes = []byte("mailboxes")
	bktMboxNames = []byte("mboxnames")
	bktRoles     = []byte("roles")
	bktMsgs      = []byte("msgs")
	bktStructs   = []byte("structs")
	bktBodies    = []byte("bodies")
	bktBlobFiles = []byte("blobfiles")
	bktChanges   = []byte("changes")
	bktDKeys     = []byte("dkeys")

	metaModSeq  = []byte("modseq")
	metaMboxSeq = []byte("mboxseq")
	metaUsed    = []byte("used")
	// metaPending counts messages delivered under a delivery key and not yet
	// re-wrapped under the blob key (deliver.go, upgradeLocked). Stores from
	// before it was kept do not have it: the next unlock then looks.
	metaPending = []byte("pending")
)

// mailBuckets are the buckets of the mail model and what every model shares.
var mailBuckets = [][]byte{bktAcctMeta, bktMailboxes, bktMboxNames, bktRoles, bktMsgs, bktStructs, bktBodies, bktBlobFiles, bktChanges, bktDKeys}

// accountBuckets are the buckets every store.db has from its creation (or
// its first open by a version that knows them).
func accountBuckets() [][]byte { return slices.Concat(mailBuckets, davBuckets, fileBuckets) }

func ensureBuckets(tx *bolt.Tx) error {
	for _, b := range accountBuckets() {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}

var errMissingBucket = errors.New("store: bucket missing")

// hasBuckets fails with errMissingBucket when ensureBuckets has something to do.
func hasBuckets(tx *bolt.Tx) error {
	for _, b := range accountBuckets() {
		if tx.Bucket(b) == nil {
			return errMissingBucket
		}
	}
	return nil
}

// Account is an unlocked account: one authenticated session's view of one
// user's store. Every method works only on this account's data. Many Accounts
// of the same user share one handle (database) in a process.
type Account struct {
	d      *Directory
	h      *handle
	id     string
	login  string
	umk    crypto.Key
	keys   *crypto.UserKeys
	rec    *crypto.RecordCipher
	kem    *crypto.KEMPrivateKey // the 32-byte seed: expanded for each Open
	closed atomic.Bool
}

func (d *Directory) openAccount(info AccountInfo, umk crypto.Key) (*Account, error) {
	a, err := d.openAccountNoUpgrade(info, umk)
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", info.Login, err)
	}
	a.h.upgradeOnce.Do(func() { go d.upgradeLocked(info, umk) })
	return a, nil
}

// Close releases the account; the handle stays open for other sessions.
func (a *Account) Close() error {
	if a.closed.Swap(true) {
		return nil
	}
	a.d.pool.release(a.h)
	return nil
}

// ID is the account's opaque id; Login its primary address.
func (a *Account) ID() string    { return a.id }
func (a *Account) Login() string { return a.login }

// Info returns the directory record (aliases, quota).
func (a *Account) Info(ctx context.Context) (AccountInfo, error) {
	return a.d.accountByID(a.id)
}

// DisplayName opens the display name sealed to this account.
func (a *Account) DisplayName(ctx context.Context) (string, error) {
	info, err := a.Info(ctx)
	if err != nil || info.DisplayName == nil {
		return "", err
	}
	b, err := a.kem.Open([]byte("display-name|"+a.id), info.DisplayName)
	return string(b), err
}

// AddAppPassword creates an app password for this (unlocked) account, for
// example when a configuration profile is downloaded.
func (a *Account) AddAppPassword(ctx context.Context, label string, scopes []Scope) (string, error) {
	info, err := a.Info(ctx)
	if err != nil {
		return "", err
	}
	return a.d.addAppPassword(info, a.umk, label, scopes)
}

func (a *Account) check() error {
	if a.closed.Load() {
		return ErrClosed
	}
	return nil
}

func (a *Account) view(fn func(tx *bolt.Tx) error) error {
	if err := a.check(); err != nil {
		return err
	}
	a.h.touch()
	return a.h.db.View(fn)
}

// update runs fn in a write transaction and wakes watchers after commit.
func (a *Account) update(fn func(tx *bolt.Tx) error) error {
	if err := a.check(); err != nil {
		return err
	}
	a.h.touch()
	err := a.h.db.Update(fn)
	if err == nil {
		a.h.notify()
	}
	return err
}

// nextModSeq allocates the next change number of the account. Every change
// (mail, DAV) gets one; it is IMAP's MODSEQ and DAV's sync token.
func nextModSeq(tx *bolt.Tx) uint64 {
	b := tx.Bucket(bktAcctMeta)
	n := getUint64(b.Get(metaModSeq)) + 1
	b.Put(metaModSeq, putUint64(n))
	return n
}

func currentModSeq(tx *bolt.Tx) uint64 {
	return getUint64(tx.Bucket(bktAcctMeta).Get(metaModSeq))
}

func getUint64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func getUint32(b []byte) uint32 {
	if len(b) != 4 {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func putUint64(n uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, n)
}

// Used is the number of bytes the account stores (counted against its quota).
func (a *Account) Used(ctx context.Context) (used, quota int64, err error) {
	err = a.view(func(tx *bolt.Tx) error {
		used = int64(getUint64(tx.Bucket(bktAcctMeta).Get(metaUsed)))
		return nil
	})
	return used, a.h.quota.Load(), err
}

// charge adds delta bytes to the account's usage, failing with ErrOverQuota
// when growth would exceed the quota. Shrinking always succeeds.
func (h *handle) charge(tx *bolt.Tx, delta int64) error {
	b := tx.Bucket(bktAcctMeta)
	used := int64(getUint64(b.Get(metaUsed)))
	if delta > 0 && used+delta > h.quota.Load() {
		return ErrOverQuota
	}
	used = max(used+delta, 0)
	return b.Put(metaUsed, putUint64(uint64(used)))
}
