package store

import (
	"context"
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// ChangeKind says what a change log entry records.
type ChangeKind uint8

// Kinds of changes. The numbers are stored: never reuse one.
const (
	ChangeMailboxCreated ChangeKind = 1
	ChangeMailboxDeleted ChangeKind = 2
	ChangeMailboxRenamed ChangeKind = 3
	ChangeMessageAdded   ChangeKind = 4
	ChangeMessageFlags   ChangeKind = 5
	ChangeMessageRemoved ChangeKind = 6
	ChangeMailboxSubscr  ChangeKind = 7
	// DAV: an object (event, contact, file) or collection changed; Collection
	// and Object say which.
	ChangeObjectPut        ChangeKind = 20
	ChangeObjectDeleted    ChangeKind = 21
	ChangeCollectionPut    ChangeKind = 22
	ChangeCollectionDelete ChangeKind = 23
)

// Change is one entry of the account's change log. ModSeq is the account-wide
// monotonic counter: IMAP MODSEQ, and (later) DAV sync tokens.
type Change struct {
	ModSeq  uint64
	Kind    ChangeKind
	Mailbox MailboxID
	UID     uint32
	// For DAV changes: the collection's id and the object's opaque key
	// (an HMAC of its name, never the name itself).
	Collection uint32
	Object     []byte
}

// The log holds only ids and kinds, nothing a person wrote: it may stay in clear.
func appendChange(tx *bolt.Tx, c Change) error {
	v := make([]byte, 0, 13+len(c.Object))
	v = append(v, byte(c.Kind))
	v = binary.BigEndian.AppendUint32(v, uint32(c.Mailbox))
	v = binary.BigEndian.AppendUint32(v, c.UID)
	if c.Collection != 0 || c.Object != nil {
		v = binary.BigEndian.AppendUint32(v, c.Collection)
		v = append(v, c.Object...)
	}
	return tx.Bucket(bktChanges).Put(putUint64(c.ModSeq), v)
}

// Changes returns the changes after since, in order, and the current modseq.
func (a *Account) Changes(ctx context.Context, since uint64) ([]Change, uint64, error) {
	var out []Change
	var cur uint64
	err := a.view(func(tx *bolt.Tx) error {
		cur = currentModSeq(tx)
		c := tx.Bucket(bktChanges).Cursor()
		for k, v := c.Seek(putUint64(since + 1)); k != nil; k, v = c.Next() {
			if len(v) < 9 {
				continue
			}
			ch := Change{
				ModSeq:  getUint64(k),
				Kind:    ChangeKind(v[0]),
				Mailbox: MailboxID(binary.BigEndian.Uint32(v[1:])),
				UID:     binary.BigEndian.Uint32(v[5:]),
			}
			if len(v) >= 13 {
				ch.Collection = binary.BigEndian.Uint32(v[9:])
				ch.Object = append([]byte(nil), v[13:]...)
			}
			out = append(out, ch)
		}
		return nil
	})
	return out, cur, err
}

// ModSeq is the account's current change counter.
func (a *Account) ModSeq(ctx context.Context) (uint64, error) {
	var cur uint64
	err := a.view(func(tx *bolt.Tx) error {
		cur = currentModSeq(tx)
		return nil
	})
	return cur, err
}

// Watcher wakes when the account changes, from any session or delivery in
// this process. C never blocks the writer: wakeups coalesce.
type Watcher struct {
	C <-chan struct{}
	c chan struct{}
	h *handle
}

// Watch subscribes to changes of the account. Close the watcher when done.
func (a *Account) Watch() *Watcher {
	c := make(chan struct{}, 1)
	w := &Watcher{C: c, c: c, h: a.h}
	a.h.watchMu.Lock()
	if a.h.watchers == nil {
		a.h.watchers = make(map[*Watcher]struct{})
	}
	a.h.watchers[w] = struct{}{}
	a.h.watchMu.Unlock()
	return w
}

// Close unsubscribes.
func (w *Watcher) Close() {
	w.h.watchMu.Lock()
	delete(w.h.watchers, w)
	w.h.watchMu.Unlock()
}

func (h *handle) notify() {
	h.watchMu.Lock()
	defer h.watchMu.Unlock()
	for w := range h.watchers {
		select {
		case w.c <- struct{}{}:
		default:
		}
	}
}
