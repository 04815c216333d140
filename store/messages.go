package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"kreide/crypto"
	"kreide/store/message"
)

// Message is a message's metadata, decrypted.
type Message struct {
	Mailbox      MailboxID
	UID          uint32
	ModSeq       uint64
	Size         int64
	InternalDate time.Time
	Flags        []string
	// Structure is the cached envelope and MIME structure, when asked for.
	Structure *message.Structure
	// Envelope alone, when only it was asked for (cheaper to decode).
	Envelope *message.Envelope
	// Header is the raw top-level header block (through the blank line),
	// when asked for and cached; nil otherwise.
	Header []byte
}

// Has reports whether the message has flag (system flags compare case-insensitively).
func (m *Message) Has(flag string) bool { return hasFlag(m.Flags, flag) }

// UIDPair maps a source UID to the UID of its copy (UIDPLUS COPYUID).
type UIDPair struct{ Src, Dst uint32 }

// FlagOp says how SetFlags combines flags.
type FlagOp int

// Flag operations of IMAP STORE.
const (
	FlagsReplace FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// FlagSeen and the other system flags, spelled as IMAP spells them.
const (
	FlagSeen     = `\Seen`
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
)

func msgKey(mbox MailboxID, uid uint32) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint32(k, uint32(mbox))
	binary.BigEndian.PutUint32(k[4:], uid)
	return k
}

func hasFlag(flags []string, flag string) bool {
	return slices.ContainsFunc(flags, func(f string) bool { return strings.EqualFold(f, flag) })
}

// normalizeFlags canonicalises system flags, drops duplicates and invalid ones.
func normalizeFlags(in []string) []string {
	var out []string
	for _, f := range in {
		for _, sys := range []string{FlagSeen, FlagAnswered, FlagFlagged, FlagDeleted, FlagDraft} {
			if strings.EqualFold(f, sys) {
				f = sys
			}
		}
		if f == "" || len(f) > 200 || strings.ContainsAny(f, " ()[]{}%*\"\\\x00\r\n") && !strings.HasPrefix(f, `\`) {
			continue
		}
		if !hasFlag(out, f) {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

func contentAAD(account string, id [16]byte) []byte {
	return append([]byte("content|"+account+"|"), id[:]...)
}

func structAAD(account string, id [16]byte) []byte {
	return append([]byte("struct|"+account+"|"), id[:]...)
}

func (a *Account) sealFlags(id [16]byte, flags []string) []byte {
	if len(flags) == 0 {
		return nil
	}
	return a.rec.Seal("flags", id[:], []byte(strings.Join(flags, " ")))
}

func (a *Account) openFlags(r *msgRecord) ([]string, error) {
	if r.Flags == nil {
		return nil, nil
	}
	plain, err := a.rec.Open("flags", r.Blob.ID[:], r.Flags)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(plain)), nil
}

// contentKey unwraps a message's content key: under the blob key, or with
// the private key when it was delivered while the account was locked.
func (a *Account) contentKey(tx *bolt.Tx, r *msgRecord) (crypto.Key, error) {
	var key crypto.Key
	var raw []byte
	var err error
	switch r.KeyWrap {
	case keyWrapBlob:
		raw, err = crypto.UnwrapKey(a.keys.Blob, r.Key, contentAAD(a.id, r.Blob.ID))
	case keyWrapSealed:
		raw, err = a.kem.Open(contentAAD(a.id, r.Blob.ID), r.Key)
	case keyWrapDelivery:
		var dk crypto.Key
		if dk, err = a.openDeliveryKey(tx, r.Key); err == nil {
			raw, err = crypto.UnwrapKey(dk, r.Key[deliveryKeyIDLen:], contentAAD(a.id, r.Blob.ID))
		}
	default:
		return key, errBadRecord
	}
	if err != nil || len(raw) != len(key) {
		return key, fmt.Errorf("message content key: %w", crypto.ErrDecrypt)
	}
	copy(key[:], raw)
	return key, nil
}

func (a *Account) structure(tx *bolt.Tx, r *msgRecord, key crypto.Key) (*message.Structure, error) {
	plain, err := a.structureBytes(tx, r, key)
	if err != nil {
		return nil, err
	}
	return message.Unmarshal(plain)
}

func (a *Account) structureBytes(tx *bolt.Tx, r *msgRecord, key crypto.Key) ([]byte, error) {
	v := tx.Bucket(bktStructs).Get(r.Blob.ID[:])
	if v == nil {
		return nil, ErrNotFound
	}
	return crypto.UnwrapKey(key, v, structAAD(a.id, r.Blob.ID))
}

// parseWhileWriting copies r into w while parsing it in one pass.
func parseWhileWriting(w io.Writer, r io.Reader) (*message.Structure, int64, error) {
	pr, pw := io.Pipe()
	type result struct {
		s   *message.Structure
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := message.Parse(pr)
		io.Copy(io.Discard, pr)
		done <- result{s, err}
	}()
	n, err := io.Copy(io.MultiWriter(w, pw), r)
	pw.CloseWithError(err)
	res := <-done
	if err != nil {
		return nil, n, err
	}
	if res.err != nil {
		return nil, n, res.err
	}
	return res.s, n, nil
}

// Append stores a message in a mailbox. It returns once the message is
// durable (IMAP OK on APPEND means it is on disk).
func (a *Account) Append(ctx context.Context, mbox MailboxID, r io.Reader, flags []string, date time.Time) (Message, error) {
	if err := a.check(); err != nil {
		return Message{}, err
	}
	if date.IsZero() {
		date = time.Now()
	}
	key := crypto.NewKey()
	bw := a.h.newBlobWriter(key)
	var hc headerCapture
	st, size, err := parseWhileWriting(io.MultiWriter(bw, &hc), r)
	if err != nil {
		bw.abort()
		return Message{}, err
	}
	ref, inline, err := bw.finish()
	if err != nil {
		return Message{}, err
	}
	flags = normalizeFlags(flags)
	rec := &msgRecord{Size: size, Date: date.Truncate(time.Second), Blob: ref, KeyWrap: keyWrapBlob,
		Key: crypto.WrapKey(a.keys.Blob, key[:], contentAAD(a.id, ref.ID)), Flags: a.sealFlags(ref.ID, flags)}
	sealedStruct := crypto.WrapKey(key, st.Marshal(), structAAD(a.id, ref.ID))
	sealedHeader := sealHeader(a.id, key, ref.ID, hc.header(st))
	var msg Message
	err = a.batch(func(tx *bolt.Tx) error {
		uid, modseq, err := a.h.insertMessage(tx, mbox, rec, !hasFlag(flags, FlagSeen), inline, sealedStruct)
		if err != nil {
			return err
		}
		if err := putHeader(tx, ref.ID, sealedHeader); err != nil {
			return err
		}
		if hasFlag(flags, FlagDeleted) {
			if err := a.updateDeleted(tx, mbox, []uint32{uid}, nil); err != nil {
				return err
			}
		}
		msg = Message{Mailbox: mbox, UID: uid, ModSeq: modseq, Size: size, InternalDate: rec.Date, Flags: flags, Structure: st}
		return nil
	})
	if err != nil {
		a.h.unlinkBlobs([]blobRef{ref})
		return Message{}, err
	}
	return msg, nil
}

// batch runs fn through bbolt's Batch, so concurrent writers to one account
// share an fsync. fn may run more than once: it must only touch tx.
func (a *Account) batch(fn func(tx *bolt.Tx) error) error {
	if err := a.check(); err != nil {
		return err
	}
	err := a.h.batch(fn)
	if err == nil {
		a.h.notify()
	}
	return err
}

// insertMessage adds a message record, charging the quota and counting it in
// the mailbox. Used by Append, Copy, Move and delivery; it needs no keys.
func (h *handle) insertMessage(tx *bolt.Tx, mbox MailboxID, rec *msgRecord, unseen bool, inline, sealedStruct []byte) (uint32, uint64, error) {
	mb := tx.Bucket(bktMailboxes)
	v := mb.Get(mboxKey(mbox))
	if v == nil {
		return 0, 0, fmt.Errorf("%w: mailbox", ErrNotFound)
	}
	var mr mailboxRecord
	if err := json.Unmarshal(v, &mr); err != nil {
		return 0, 0, err
	}
	if err := h.charge(tx, rec.Size); err != nil {
		return 0, 0, err
	}
	uid := mr.UIDNext
	modseq := nextModSeq(tx)
	rec.ModSeq = modseq
	mr.UIDNext++
	mr.HighestModSeq = modseq
	mr.Messages++
	mr.Size += rec.Size
	if unseen {
		mr.Unseen++
	}
	nv, err := json.Marshal(&mr)
	if err != nil {
		return 0, 0, err
	}
	if err := mb.Put(mboxKey(mbox), nv); err != nil {
		return 0, 0, err
	}
	if err := tx.Bucket(bktMsgs).Put(msgKey(mbox, uid), rec.marshal()); err != nil {
		return 0, 0, err
	}
	if err := tx.Bucket(bktStructs).Put(rec.Blob.ID[:], sealedStruct); err != nil {
		return 0, 0, err
	}
	if err := putBlob(tx, rec.Blob, inline); err != nil {
		return 0, 0, err
	}
	return uid, modseq, appendChange(tx, Change{ModSeq: modseq, Kind: ChangeMessageAdded, Mailbox: mbox, UID: uid})
}

// loadMessage reads a message record and its flags (ErrNotFound if absent).
func (a *Account) loadMessage(tx *bolt.Tx, mbox MailboxID, uid uint32) (*msgRecord, []string, error) {
	v := tx.Bucket(bktMsgs).Get(msgKey(mbox, uid))
	if v == nil {
		return nil, nil, ErrNotFound
	}
	rec, err := unmarshalMsgRecord(v)
	if err != nil {
		return nil, nil, err
	}
	flags, err := a.openFlags(rec)
	return rec, flags, err
}

// UIDs lists the UIDs of a mailbox in ascending order.
func (a *Account) UIDs(ctx context.Context, mbox MailboxID) ([]uint32, error) {
	var out []uint32
	err := a.view(func(tx *bolt.Tx) error {
		var err error
		out, err = a.uidsTx(tx, mbox)
		return err
	})
	return out, err
}

func (a *Account) uidsTx(tx *bolt.Tx, mbox MailboxID) ([]uint32, error) {
	if tx.Bucket(bktMailboxes).Get(mboxKey(mbox)) == nil {
		return nil, fmt.Errorf("%w: mailbox", ErrNotFound)
	}
	var out []uint32
	prefix := mboxKey(mbox)
	c := tx.Bucket(bktMsgs).Cursor()
	for k, _ := c.Seek(prefix); len(k) == 8 && string(k[:4]) == string(prefix); k, _ = c.Next() {
		out = append(out, binary.BigEndian.Uint32(k[4:]))
	}
	return out, nil
}

// FetchOptions choose what Messages decrypts.
type FetchOptions struct {
	Structure bool // envelope and MIME structure (Message.Structure)
	Envelope  bool // only the envelope (Message.Envelope)
	// Header: the cached top-level header block (Message.Header). A
	// message without one gets Structure instead, to read it from the
	// content.
	Header bool
}

// Messages calls fn for each existing message of uids (ascending; nil means
// all), in UID order. Missing UIDs are skipped.
func (a *Account) Messages(ctx context.Context, mbox MailboxID, uids []uint32, opts FetchOptions, fn func(*Message) error) error {
	return a.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bktMailboxes).Get(mboxKey(mbox)) == nil {
			return fmt.Errorf("%w: mailbox", ErrNotFound)
		}
		c := tx.Bucket(bktMsgs).Cursor()
		headers := tx.Bucket(bktHeaders)
		visit := func(k, v []byte) error {
			rec, err := unmarshalMsgRecord(v)
			if err != nil {
				return err
			}
			m := &Message{Mailbox: mbox, UID: binary.BigEndian.Uint32(k[4:]), ModSeq: rec.ModSeq, Size: rec.Size, InternalDate: rec.Date}
			if m.Flags, err = a.openFlags(rec); err != nil {
				return err
			}
			if opts.Structure || opts.Envelope || opts.Header {
				key, err := a.contentKey(tx, rec)
				if err != nil {
					return err
				}
				structure := opts.Structure
				if opts.Header {
					if m.Header, err = a.openHeader(headers, rec, key); err != nil {
						return err
					}
					structure = structure || m.Header == nil
				}
				if !structure && !opts.Envelope {
					return fn(m)
				}
				plain, err := a.structureBytes(tx, rec, key)
				if err != nil {
					return err
				}
				if structure {
					if m.Structure, err = message.Unmarshal(plain); err != nil {
						return err
					}
					m.Envelope = &m.Structure.Envelope
				} else {
					env, _, err := message.UnmarshalEnvelope(plain)
					if err != nil {
						return err
					}
					m.Envelope = &env
				}
			}
			return fn(m)
		}
		prefix := mboxKey(mbox)
		if uids == nil {
			for k, v := c.Seek(prefix); k != nil && string(k[:4]) == string(prefix); k, v = c.Next() {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := visit(k, v); err != nil {
					return err
				}
			}
			return nil
		}
		for _, uid := range uids {
			if err := ctx.Err(); err != nil {
				return err
			}
			k, v := c.Seek(msgKey(mbox, uid))
			if k == nil || binary.BigEndian.Uint32(k[:4]) != uint32(mbox) || binary.BigEndian.Uint32(k[4:]) != uid {
				continue
			}
			if err := visit(k, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// OpenMessage opens a message's content for reading; it can seek, so a
// partial FETCH decrypts only the chunks it needs. Close it when done.
func (a *Account) OpenMessage(ctx context.Context, mbox MailboxID, uid uint32) (*BlobReader, error) {
	var br *BlobReader
	err := a.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bktMsgs).Get(msgKey(mbox, uid))
		if v == nil {
			return ErrNotFound
		}
		rec, err := unmarshalMsgRecord(v)
		if err != nil {
			return err
		}
		key, err := a.contentKey(tx, rec)
		if err != nil {
			return err
		}
		br, err = a.h.openBlob(tx, rec.Blob, key)
		return err
	})
	return br, err
}

// SetFlags changes flags of uids. With unchangedSince > 0 (CONDSTORE), a
// message whose modseq is greater is left alone and reported in failed.
// Concurrent STOREs and EXPUNGEs of one account share a commit (batch).
func (a *Account) SetFlags(ctx context.Context, mbox MailboxID, uids []uint32, op FlagOp, flags []string, unchangedSince uint64) (updated []Message, failed []uint32, err error) {
	flags = normalizeFlags(flags)
	err = a.batch(func(tx *bolt.Tx) error {
		updated, failed = nil, nil
		r, err := a.getMailbox(tx, mbox)
		if err != nil {
			return err
		}
		msgs := tx.Bucket(bktMsgs)
		var modseq uint64 // each changed message gets its own: the change log is keyed by modseq
		var delAdd, delRemove []uint32
		for _, uid := range uids {
			k := msgKey(mbox, uid)
			v := msgs.Get(k)
			if v == nil {
				continue
			}
			rec, err := unmarshalMsgRecord(v)
			if err != nil {
				return err
			}
			if unchangedSince > 0 && rec.ModSeq > unchangedSince {
				failed = append(failed, uid)
				continue
			}
			old, err := a.openFlags(rec)
			if err != nil {
				return err
			}
			var next []string
			switch op {
			case FlagsReplace:
				next = flags
			case FlagsAdd:
				next = normalizeFlags(append(slices.Clone(old), flags...))
			case FlagsRemove:
				next = slices.DeleteFunc(slices.Clone(old), func(f string) bool { return hasFlag(flags, f) })
			}
			m := Message{Mailbox: mbox, UID: uid, ModSeq: rec.ModSeq, Size: rec.Size, InternalDate: rec.Date, Flags: next}
			if slices.Equal(old, next) {
				updated = append(updated, m) // unchanged: reported, no new modseq
				continue
			}
			modseq = nextModSeq(tx)
			if was, is := hasFlag(old, FlagDeleted), hasFlag(next, FlagDeleted); was && !is {
				delRemove = append(delRemove, uid)
			} else if is && !was {
				delAdd = append(delAdd, uid)
			}
			if hasFlag(old, FlagSeen) != hasFlag(next, FlagSeen) {
				if hasFlag(next, FlagSeen) {
					r.Unseen--
				} else {
					r.Unseen++
				}
			}
			rec.ModSeq = modseq
			rec.Flags = a.sealFlags(rec.Blob.ID, next)
			if err := msgs.Put(k, rec.marshal()); err != nil {
				return err
			}
			if err := appendChange(tx, Change{ModSeq: modseq, Kind: ChangeMessageFlags, Mailbox: mbox, UID: uid}); err != nil {
				return err
			}
			m.ModSeq = modseq
			updated = append(updated, m)
		}
		if modseq != 0 {
			r.HighestModSeq = modseq
			if err := a.putMailbox(tx, mbox, r); err != nil {
				return err
			}
		}
		return a.updateDeleted(tx, mbox, delAdd, delRemove)
	})
	return updated, failed, err
}

// Copy copies messages to another mailbox (of the same account), keeping flags
// and internal dates. Content files are hard-linked, not rewritten.
func (a *Account) Copy(ctx context.Context, src MailboxID, uids []uint32, dst MailboxID) ([]UIDPair, error) {
	var pairs []UIDPair
	var created []blobRef
	err := a.update(func(tx *bolt.Tx) error {
		if _, err := a.getMailbox(tx, dst); err != nil {
			return err
		}
		msgs := tx.Bucket(bktMsgs)
		var deleted []uint32 // copies with \Deleted
		for _, uid := range uids {
			v := msgs.Get(msgKey(src, uid))
			if v == nil {
				continue
			}
			rec, err := unmarshalMsgRecord(v)
			if err != nil {
				return err
			}
			key, err := a.contentKey(tx, rec)
			if err != nil {
				return err
			}
			st, err := a.structure(tx, rec, key)
			if err != nil {
				return err
			}
			flags, err := a.openFlags(rec)
			if err != nil {
				return err
			}
			header, err := a.openHeader(tx.Bucket(bktHeaders), rec, key)
			if err != nil {
				return err
			}
			ref, inline, err := a.h.copyBlob(tx, rec.Blob)
			if err != nil {
				return err
			}
			created = append(created, ref)
			nrec := &msgRecord{Size: rec.Size, Date: rec.Date, Blob: ref, KeyWrap: keyWrapBlob,
				Key: crypto.WrapKey(a.keys.Blob, key[:], contentAAD(a.id, ref.ID)), Flags: a.sealFlags(ref.ID, flags)}
			sealed := crypto.WrapKey(key, st.Marshal(), structAAD(a.id, ref.ID))
			nuid, _, err := a.h.insertMessage(tx, dst, nrec, !hasFlag(flags, FlagSeen), inline, sealed)
			if err != nil {
				return err
			}
			if err := putHeader(tx, ref.ID, sealHeader(a.id, key, ref.ID, header)); err != nil {
				return err
			}
			if hasFlag(flags, FlagDeleted) {
				deleted = append(deleted, nuid)
			}
			pairs = append(pairs, UIDPair{Src: uid, Dst: nuid})
		}
		return a.updateDeleted(tx, dst, deleted, nil)
	})
	if err != nil {
		a.h.unlinkBlobs(created)
		return nil, err
	}
	return pairs, nil
}

// Move moves messages to another mailbox atomically (RFC 6851): the content
// stays where it is; only records change.
func (a *Account) Move(ctx context.Context, src MailboxID, uids []uint32, dst MailboxID) ([]UIDPair, error) {
	var pairs []UIDPair
	err := a.update(func(tx *bolt.Tx) error {
		var err error
		pairs, err = a.moveTx(tx, src, uids, dst)
		return err
	})
	return pairs, err
}

func (a *Account) moveTx(tx *bolt.Tx, src MailboxID, uids []uint32, dst MailboxID) ([]UIDPair, error) {
	if src == dst {
		return nil, fmt.Errorf("%w: move to the same mailbox", ErrInvalid)
	}
	if _, err := a.getMailbox(tx, dst); err != nil {
		return nil, err
	}
	var pairs []UIDPair
	var srcDeleted, dstDeleted []uint32
	for _, uid := range uids {
		rec, flags, err := a.loadMessage(tx, src, uid)
		if errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		if err := a.removeMessageTx(tx, src, uid, rec, flags, false); err != nil {
			return nil, err
		}
		sealedStruct := append([]byte(nil), tx.Bucket(bktStructs).Get(rec.Blob.ID[:])...)
		var inline []byte
		if rec.Blob.Inline {
			inline = append([]byte(nil), tx.Bucket(bktBodies).Get(rec.Blob.ID[:])...)
		}
		nuid, _, err := a.h.insertMessage(tx, dst, rec, !hasFlag(flags, FlagSeen), inline, sealedStruct)
		if err != nil {
			return nil, err
		}
		if hasFlag(flags, FlagDeleted) {
			srcDeleted = append(srcDeleted, uid)
			dstDeleted = append(dstDeleted, nuid)
		}
		pairs = append(pairs, UIDPair{Src: uid, Dst: nuid})
	}
	if err := a.updateDeleted(tx, src, nil, srcDeleted); err != nil {
		return nil, err
	}
	return pairs, a.updateDeleted(tx, dst, dstDeleted, nil)
}

// removeMessageTx deletes a message record and updates its mailbox's counts.
// With content, its structure and blob go too (expunge); without, they stay
// for the record that takes its place (move).
func (a *Account) removeMessageTx(tx *bolt.Tx, mbox MailboxID, uid uint32, rec *msgRecord, flags []string, content bool) error {
	r, err := a.getMailbox(tx, mbox)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bktMsgs).Delete(msgKey(mbox, uid)); err != nil {
		return err
	}
	modseq := nextModSeq(tx)
	r.Messages--
	r.Size -= rec.Size
	if !hasFlag(flags, FlagSeen) && r.Unseen > 0 {
		r.Unseen--
	}
	r.HighestModSeq = modseq
	if err := a.putMailbox(tx, mbox, r); err != nil {
		return err
	}
	if err := a.h.charge(tx, -rec.Size); err != nil {
		return err
	}
	if content {
		tx.Bucket(bktStructs).Delete(rec.Blob.ID[:])
		if err := deleteHeader(tx, rec.Blob.ID); err != nil {
			return err
		}
		if err := deleteBlob(tx, rec.Blob); err != nil {
			return err
		}
	}
	return appendChange(tx, Change{ModSeq: modseq, Kind: ChangeMessageRemoved, Mailbox: mbox, UID: uid})
}

// Expunge permanently removes messages (uids), whatever their flags: the
// caller picks which (for IMAP, those with \Deleted). It returns the UIDs
// that were removed.
func (a *Account) Expunge(ctx context.Context, mbox MailboxID, uids []uint32) ([]uint32, error) {
	var removed []blobRef
	var done []uint32
	err := a.batch(func(tx *bolt.Tx) error {
		var err error
		done, removed, err = a.expungeTx(tx, mbox, uids)
		return err
	})
	if err != nil {
		return nil, err
	}
	a.h.unlinkBlobs(removed)
	return done, nil
}

func (a *Account) expungeTx(tx *bolt.Tx, mbox MailboxID, uids []uint32) ([]uint32, []blobRef, error) {
	return a.expungeUIDsTx(tx, mbox, uids, false)
}

// expungeUIDsTx removes messages; with onlyDeleted, only those that have
// \Deleted (uids then come from the deleted set: any that do not are
// dropped from it).
func (a *Account) expungeUIDsTx(tx *bolt.Tx, mbox MailboxID, uids []uint32, onlyDeleted bool) ([]uint32, []blobRef, error) {
	var done, deleted []uint32
	var refs []blobRef
	for _, uid := range uids {
		rec, flags, err := a.loadMessage(tx, mbox, uid)
		if errors.Is(err, ErrNotFound) {
			if onlyDeleted {
				deleted = append(deleted, uid)
			}
			continue
		} else if err != nil {
			return nil, nil, err
		}
		isDeleted := hasFlag(flags, FlagDeleted)
		if isDeleted || onlyDeleted {
			deleted = append(deleted, uid)
		}
		if onlyDeleted && !isDeleted {
			continue
		}
		if err := a.removeMessageTx(tx, mbox, uid, rec, flags, true); err != nil {
			return nil, nil, err
		}
		done = append(done, uid)
		refs = append(refs, rec.Blob)
	}
	return done, refs, a.updateDeleted(tx, mbox, nil, deleted)
}
