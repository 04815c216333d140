package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Deleted sets (issue #8). EXPUNGE must find the messages with \Deleted;
// opening every message's sealed flags for that made it cost the size of
// the mailbox. Each mailbox instead has one sealed record of the UIDs that
// have \Deleted:
//
//	deleted    mailbox id -> UIDs with \Deleted, sealed under the record
//	           key; created on first write
//
// Every write that changes which messages of a mailbox have \Deleted
// (SetFlags, Append, Copy, Move, Expunge, DeleteMailbox through expungeTx)
// updates the record in the same transaction, so it is crash-consistent. A
// mailbox without a record (data from before it, or never needed) is
// scanned when it is first needed; the first write stores the result. The
// record is only a hint: ExpungeDeleted checks each message's own flags
// before removing it, so a stale record can make it miss a message but never
// remove one without \Deleted. An empty mailbox keeps no record.
var bktDeleted = []byte("deleted")

const deletedSetVersion = 1

// encodeUIDs encodes an ascending UID list as deltas.
func encodeUIDs(uids []uint32) []byte {
	b := make([]byte, 0, 2+2*len(uids))
	b = append(b, deletedSetVersion)
	b = binary.AppendUvarint(b, uint64(len(uids)))
	prev := uint32(0)
	for _, u := range uids {
		b = binary.AppendUvarint(b, uint64(u-prev))
		prev = u
	}
	return b
}

func decodeUIDs(b []byte) ([]uint32, error) {
	d := decoder{b: b}
	if d.byte() != deletedSetVersion {
		return nil, errBadRecord
	}
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		return nil, errBadRecord
	}
	out := make([]uint32, 0, n)
	prev := uint64(0)
	for range n {
		delta := d.uvarint()
		if delta == 0 || prev+delta > 1<<32-1 { // UIDs are > 0 and ascending
			return nil, errBadRecord
		}
		prev += delta
		out = append(out, uint32(prev))
	}
	if d.err || len(d.b) != 0 {
		return nil, errBadRecord
	}
	return out, nil
}

// deletedRecord reads a mailbox's deleted set; ok is false if it has none
// or it does not open (it is a hint: the flags can rebuild it).
func (a *Account) deletedRecord(tx *bolt.Tx, mbox MailboxID) (uids []uint32, ok bool) {
	b := tx.Bucket(bktDeleted)
	if b == nil {
		return nil, false
	}
	v := b.Get(mboxKey(mbox))
	if v == nil {
		return nil, false
	}
	plain, err := a.rec.Open("deleted", mboxKey(mbox), v)
	if err != nil {
		return nil, false
	}
	uids, err = decodeUIDs(plain)
	return uids, err == nil
}

// scanDeleted finds the \Deleted messages of a mailbox by opening every
// message's flags: the slow way, for mailboxes without a record.
func (a *Account) scanDeleted(tx *bolt.Tx, mbox MailboxID) ([]uint32, error) {
	var out []uint32
	prefix := mboxKey(mbox)
	c := tx.Bucket(bktMsgs).Cursor()
	for k, v := c.Seek(prefix); len(k) == 8 && string(k[:4]) == string(prefix); k, v = c.Next() {
		rec, err := unmarshalMsgRecord(v)
		if err != nil {
			return nil, err
		}
		if rec.Flags == nil {
			continue
		}
		flags, err := a.openFlags(rec)
		if err != nil {
			return nil, err
		}
		if hasFlag(flags, FlagDeleted) {
			out = append(out, binary.BigEndian.Uint32(k[4:]))
		}
	}
	return out, nil
}

// deletedSet returns a mailbox's deleted set from its record, or by a scan.
func (a *Account) deletedSet(tx *bolt.Tx, mbox MailboxID) ([]uint32, error) {
	if uids, ok := a.deletedRecord(tx, mbox); ok {
		return uids, nil
	}
	return a.scanDeleted(tx, mbox)
}

func mailboxEmpty(tx *bolt.Tx, mbox MailboxID) bool {
	prefix := mboxKey(mbox)
	k, _ := tx.Bucket(bktMsgs).Cursor().Seek(prefix)
	return k == nil || string(k[:4]) != string(prefix)
}

// putDeletedSet stores a mailbox's deleted set (ascending).
func (a *Account) putDeletedSet(tx *bolt.Tx, mbox MailboxID, uids []uint32) error {
	if mailboxEmpty(tx, mbox) {
		if b := tx.Bucket(bktDeleted); b != nil {
			return b.Delete(mboxKey(mbox))
		}
		return nil
	}
	b, err := tx.CreateBucketIfNotExists(bktDeleted)
	if err != nil {
		return err
	}
	return b.Put(mboxKey(mbox), a.rec.Seal("deleted", mboxKey(mbox), encodeUIDs(uids)))
}

// updateDeleted adds and removes UIDs of a mailbox's deleted set. Call it
// after the transaction's changes to the mailbox's messages: if there is no
// record yet, the scan that makes one already sees them (adding and
// removing are idempotent). It also drops the record of a mailbox left
// empty.
func (a *Account) updateDeleted(tx *bolt.Tx, mbox MailboxID, add, remove []uint32) error {
	if len(add) == 0 && len(remove) == 0 {
		if mailboxEmpty(tx, mbox) {
			return a.putDeletedSet(tx, mbox, nil)
		}
		return nil
	}
	set, err := a.deletedSet(tx, mbox)
	if err != nil {
		return err
	}
	if len(add) > 0 {
		set = slices.Compact(slices.Sorted(slices.Values(append(set, add...))))
	}
	if len(remove) > 0 {
		rm := slices.Sorted(slices.Values(remove))
		set = slices.DeleteFunc(set, func(u uint32) bool {
			_, found := slices.BinarySearch(rm, u)
			return found
		})
	}
	return a.putDeletedSet(tx, mbox, set)
}

// DeletedUIDs lists the UIDs of the messages of mbox that have \Deleted,
// ascending (IMAP STATUS DELETED), without opening every message's flags.
func (a *Account) DeletedUIDs(ctx context.Context, mbox MailboxID) ([]uint32, error) {
	var out []uint32
	err := a.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bktMailboxes).Get(mboxKey(mbox)) == nil {
			return fmt.Errorf("%w: mailbox", ErrNotFound)
		}
		var err error
		out, err = a.deletedSet(tx, mbox)
		return err
	})
	return out, err
}

// ExpungeDeleted permanently removes the messages of mbox that have
// \Deleted (IMAP EXPUNGE, CLOSE), restricted to uids unless it is nil, and
// returns the UIDs removed, ascending. It costs in proportion to the number
// of \Deleted messages, not to the size of the mailbox. uids is only read.
func (a *Account) ExpungeDeleted(ctx context.Context, mbox MailboxID, uids []uint32) ([]uint32, error) {
	if !slices.IsSorted(uids) {
		uids = slices.Sorted(slices.Values(uids))
	}
	among := func(set []uint32) []uint32 {
		if uids == nil {
			return set
		}
		return slices.DeleteFunc(set, func(u uint32) bool {
			_, found := slices.BinarySearch(uids, u)
			return !found
		})
	}
	// Most EXPUNGEs and CLOSEs find nothing: then no write (and fsync).
	var nothing bool
	err := a.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bktMailboxes).Get(mboxKey(mbox)) == nil {
			return fmt.Errorf("%w: mailbox", ErrNotFound)
		}
		set, ok := a.deletedRecord(tx, mbox)
		nothing = ok && len(among(set)) == 0
		return nil
	})
	if err != nil || nothing {
		return nil, err
	}
	var removed []blobRef
	var done []uint32
	err = a.batch(func(tx *bolt.Tx) error {
		done, removed = nil, nil
		if _, err := a.getMailbox(tx, mbox); err != nil {
			return err
		}
		var err error
		set, ok := a.deletedRecord(tx, mbox)
		if !ok {
			if set, err = a.scanDeleted(tx, mbox); err != nil {
				return err
			}
			if err := a.putDeletedSet(tx, mbox, set); err != nil {
				return err
			}
		}
		if set = among(set); len(set) == 0 {
			return nil
		}
		done, removed, err = a.expungeUIDsTx(tx, mbox, set, true)
		return err
	})
	if err != nil {
		return nil, err
	}
	a.h.unlinkBlobs(removed)
	return done, nil
}
