package store

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"kreide/crypto"
)

// Object is a calendar object (event, task) or a contact, decrypted.
type Object struct {
	Collection uint32
	Name       string // the resource name in its collection, e.g. "abc.ics"
	ETag       string // strong; changes whenever the content does
	UID        string
	Component  string // VEVENT, VTODO, VJOURNAL; "" for contacts
	Size       int64
	ModTime    time.Time
	ModSeq     uint64
	// Summary is set by ObjectsInRange.
	Summary *ObjectSummary
	// Data is the content, when asked for.
	Data []byte
}

// ObjectSummary is what the caller parsed out of an object when storing it.
// The store does not parse iCalendar or vCard (protocol adapters do): it
// keeps the summary sealed and uses it to answer ObjectsInRange and to
// refuse a second resource with the same UID.
type ObjectSummary struct {
	UID       string
	Component string // calendars: CompEvent, CompTodo, CompJournal
	// Start and End bound every occurrence of a calendar object: the first
	// start and the last end. Zero means unbounded (an endless RRULE, a task
	// without dates).
	Start, End time.Time
	// Exact says [Start, End) is the object's only occurrence, in absolute
	// time, so a time-range test on it needs no parsing.
	Exact bool
}

// PutObjectOptions are the conditions and summary of PutObject.
type PutObjectOptions struct {
	// IfMatch: the object must exist with one of these ETags ("*": any).
	IfMatch []string
	// IfNoneMatch: the object must not exist ("*") or must not have one of
	// these ETags.
	IfNoneMatch []string
	Summary     ObjectSummary
}

// ObjectOptions choose what object reads decrypt.
type ObjectOptions struct {
	Data bool
}

// UIDConflictError says another object of the collection has the UID
// (CalDAV/CardDAV no-uid-conflict). It matches ErrExists.
type UIDConflictError struct{ Name string }

func (e *UIDConflictError) Error() string {
	return "store: UID already used by " + e.Name
}

func (e *UIDConflictError) Unwrap() error { return ErrExists }

// ErrStaleSyncToken: a sync token that this collection cannot answer (from
// the future, or older than what the log keeps). Clients then sync afresh.
var ErrStaleSyncToken = errors.New("store: sync token no longer valid")

func matchObjectETag(list []string, etag string) bool {
	return slices.Contains(list, "*") || slices.Contains(list, etag)
}

func (a *Account) etag(data []byte) string {
	return hex.EncodeToString(crypto.Blind(a.keys.Index, "dav-etag", data))
}

// PutObject creates or replaces an object. It returns once the object is
// durable; created says whether it is new. Conditions that fail give
// ErrModified (HTTP 412); a UID used by another object *UIDConflictError.
func (a *Account) PutObject(ctx context.Context, coll uint32, name string, data []byte, opts PutObjectOptions) (obj Object, created bool, err error) {
	if err := a.check(); err != nil {
		return Object{}, false, err
	}
	if err := validDAVName(name); err != nil {
		return Object{}, false, fmt.Errorf("%w: object name", ErrInvalid)
	}
	if len(data) == 0 {
		return Object{}, false, fmt.Errorf("%w: empty object", ErrInvalid)
	}
	k := a.objKey(coll, name)
	sum := opts.Summary
	meta := objMeta{Name: name, ETag: a.etag(data), UID: sum.UID, Comp: sum.Component}
	rec := &objRecord{Size: int64(len(data)), ModTime: nowSecond(), Inline: len(data) <= inlineMax, Meta: a.sealObjMeta(k, meta)}
	var sealed []byte
	if rec.Inline {
		sealed = a.rec.Seal("davdata", k, data)
	} else {
		key := crypto.NewKey()
		bw := a.h.newBlobWriter(key)
		bw.Write(data)
		ref, inline, err := bw.finish()
		if err != nil {
			return Object{}, false, err
		}
		if ref.Inline { // cannot happen above inlineMax; keep the invariant anyway
			bw.abort()
			return Object{}, false, fmt.Errorf("store: blob unexpectedly inline (%d bytes)", len(inline))
		}
		rec.Blob, rec.Key = ref, crypto.WrapKey(a.keys.Blob, key[:], davContentAAD(a.id, ref.ID))
	}
	var old []blobRef
	err = a.batch(func(tx *bolt.Tx) error {
		old, created = nil, false
		cr, err := a.getColl(tx, coll)
		if err != nil {
			return err
		}
		objs := tx.Bucket(bktDavObjs)
		var prev *objRecord
		var prevMeta objMeta
		if v := objs.Get(k); v != nil {
			if prev, err = unmarshalObjRecord(v); err != nil {
				return err
			}
			if prevMeta, err = a.openObjMeta(k, prev); err != nil {
				return err
			}
		}
		if len(opts.IfMatch) > 0 && (prev == nil || !matchObjectETag(opts.IfMatch, prevMeta.ETag)) {
			return fmt.Errorf("%w: If-Match", ErrModified)
		}
		if len(opts.IfNoneMatch) > 0 && prev != nil && matchObjectETag(opts.IfNoneMatch, prevMeta.ETag) {
			return fmt.Errorf("%w: If-None-Match", ErrModified)
		}
		uids := tx.Bucket(bktDavUIDs)
		if sum.UID != "" {
			if short := uids.Get(a.uidKey(coll, sum.UID)); short != nil && !bytes.Equal(short, k[4:]) {
				other := fullObjKey(coll, short)
				v := objs.Get(other)
				if v == nil {
					return fmt.Errorf("%w: dangling UID index entry", errBadRecord)
				}
				orec, err := unmarshalObjRecord(v)
				if err != nil {
					return err
				}
				om, err := a.openObjMeta(other, orec)
				if err != nil {
					return err
				}
				return &UIDConflictError{Name: om.Name}
			}
		}
		delta := rec.Size
		if prev != nil {
			delta -= prev.Size
			if prevMeta.UID != "" && prevMeta.UID != sum.UID {
				if err := uids.Delete(a.uidKey(coll, prevMeta.UID)); err != nil {
					return err
				}
			}
			if prev.Inline && !rec.Inline {
				if err := tx.Bucket(bktDavData).Delete(k); err != nil {
					return err
				}
			}
			if !prev.Inline {
				if err := deleteBlob(tx, prev.Blob); err != nil {
					return err
				}
				old = append(old, prev.Blob)
			}
		}
		if err := a.h.charge(tx, delta); err != nil {
			return err
		}
		modseq := nextModSeq(tx)
		rec.ModSeq = modseq
		if err := objs.Put(k, rec.marshal()); err != nil {
			return err
		}
		if rec.Inline {
			err = tx.Bucket(bktDavData).Put(k, sealed)
		} else {
			err = putBlob(tx, rec.Blob, nil)
		}
		if err != nil {
			return err
		}
		if cr.Kind == KindCalendar {
			if err := tx.Bucket(bktDavSums).Put(k, a.sealSum(k, newSum(&sum))); err != nil {
				return err
			}
		}
		if sum.UID != "" {
			if err := uids.Put(a.uidKey(coll, sum.UID), k[4:]); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bktDavTombs).Delete(k); err != nil {
			return err
		}
		if err := a.touchColl(tx, coll, modseq); err != nil {
			return err
		}
		created = prev == nil
		return appendChange(tx, Change{ModSeq: modseq, Kind: ChangeObjectPut, Collection: coll, Object: k[4:]})
	})
	if err != nil {
		if !rec.Inline {
			a.h.unlinkBlobs([]blobRef{rec.Blob})
		}
		return Object{}, false, err
	}
	a.h.unlinkBlobs(old)
	return Object{Collection: coll, Name: name, ETag: meta.ETag, UID: meta.UID, Component: meta.Comp,
		Size: rec.Size, ModTime: rec.ModTime, ModSeq: rec.ModSeq}, created, nil
}

// fullObjKey: the UID index stores the 16-byte object part; rebuild the full key.
func fullObjKey(coll uint32, short []byte) []byte {
	return append(collKey(coll), short...)
}

// dropContent removes an object's content record, summary and UID index
// entry (not the object record itself). Blob files are unlinked by the
// caller after commit.
func (a *Account) dropContent(tx *bolt.Tx, k []byte, rec *objRecord) error {
	if rec.Inline {
		if err := tx.Bucket(bktDavData).Delete(k); err != nil {
			return err
		}
	} else if err := deleteBlob(tx, rec.Blob); err != nil {
		return err
	}
	return tx.Bucket(bktDavSums).Delete(k)
}

// DeleteObject removes an object; with ifMatch, only if its ETag is one of
// them (ErrModified otherwise).
func (a *Account) DeleteObject(ctx context.Context, coll uint32, name string, ifMatch []string) error {
	k := a.objKey(coll, name)
	var removed *objRecord
	err := a.batch(func(tx *bolt.Tx) error {
		removed = nil
		if _, err := a.getColl(tx, coll); err != nil {
			return err
		}
		objs := tx.Bucket(bktDavObjs)
		v := objs.Get(k)
		if v == nil {
			return fmt.Errorf("%w: object", ErrNotFound)
		}
		rec, err := unmarshalObjRecord(v)
		if err != nil {
			return err
		}
		m, err := a.openObjMeta(k, rec)
		if err != nil {
			return err
		}
		if len(ifMatch) > 0 && !matchObjectETag(ifMatch, m.ETag) {
			return fmt.Errorf("%w: If-Match", ErrModified)
		}
		if err := a.dropContent(tx, k, rec); err != nil {
			return err
		}
		if m.UID != "" {
			uk := a.uidKey(coll, m.UID)
			if bytes.Equal(tx.Bucket(bktDavUIDs).Get(uk), k[4:]) {
				if err := tx.Bucket(bktDavUIDs).Delete(uk); err != nil {
					return err
				}
			}
		}
		if err := objs.Delete(k); err != nil {
			return err
		}
		if err := a.h.charge(tx, -rec.Size); err != nil {
			return err
		}
		modseq := nextModSeq(tx)
		if err := tx.Bucket(bktDavTombs).Put(k, a.sealTomb(k, modseq, m.Name)); err != nil {
			return err
		}
		if err := a.touchColl(tx, coll, modseq); err != nil {
			return err
		}
		removed = rec
		return appendChange(tx, Change{ModSeq: modseq, Kind: ChangeObjectDeleted, Collection: coll, Object: k[4:]})
	})
	if err == nil && !removed.Inline {
		a.h.unlinkBlobs([]blobRef{removed.Blob})
	}
	return err
}

// readObject decrypts one object record (and its content if asked).
func (a *Account) readObject(tx *bolt.Tx, coll uint32, k []byte, rec *objRecord, opts ObjectOptions) (*Object, error) {
	m, err := a.openObjMeta(k, rec)
	if err != nil {
		return nil, err
	}
	o := &Object{Collection: coll, Name: m.Name, ETag: m.ETag, UID: m.UID, Component: m.Comp,
		Size: rec.Size, ModTime: rec.ModTime, ModSeq: rec.ModSeq}
	if !opts.Data {
		return o, nil
	}
	if rec.Inline {
		v := tx.Bucket(bktDavData).Get(k)
		if v == nil {
			return nil, fmt.Errorf("%w: object content", ErrNotFound)
		}
		o.Data, err = a.rec.Open("davdata", k, v)
		return o, err
	}
	raw, err := crypto.UnwrapKey(a.keys.Blob, rec.Key, davContentAAD(a.id, rec.Blob.ID))
	if err != nil {
		return nil, err
	}
	key, err := crypto.KeyFromBytes(raw)
	if err != nil {
		return nil, err
	}
	br, err := a.h.openBlob(tx, rec.Blob, key)
	if err != nil {
		return nil, err
	}
	defer br.Close()
	o.Data, err = io.ReadAll(br)
	return o, err
}

// GetObject returns an object with its content.
func (a *Account) GetObject(ctx context.Context, coll uint32, name string) (*Object, error) {
	var o *Object
	err := a.GetObjects(ctx, coll, []string{name}, ObjectOptions{Data: true}, func(x *Object) error {
		o = x
		return nil
	})
	if err == nil && o == nil {
		err = fmt.Errorf("%w: object", ErrNotFound)
	}
	return o, err
}

// GetObjects calls fn for each of names that exists, in the order given
// (calendar-multiget, addressbook-multiget). Missing names are skipped.
func (a *Account) GetObjects(ctx context.Context, coll uint32, names []string, opts ObjectOptions, fn func(*Object) error) error {
	return a.view(func(tx *bolt.Tx) error {
		if _, err := a.getColl(tx, coll); err != nil {
			return err
		}
		objs := tx.Bucket(bktDavObjs)
		for _, name := range names {
			if err := ctx.Err(); err != nil {
				return err
			}
			k := a.objKey(coll, name)
			v := objs.Get(k)
			if v == nil {
				continue
			}
			rec, err := unmarshalObjRecord(v)
			if err != nil {
				return err
			}
			o, err := a.readObject(tx, coll, k, rec, opts)
			if err != nil {
				return err
			}
			if err := fn(o); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListObjects calls fn for every object of a collection (in no meaningful order).
func (a *Account) ListObjects(ctx context.Context, coll uint32, opts ObjectOptions, fn func(*Object) error) error {
	return a.view(func(tx *bolt.Tx) error {
		if _, err := a.getColl(tx, coll); err != nil {
			return err
		}
		prefix := collKey(coll)
		c := tx.Bucket(bktDavObjs).Cursor()
		for k, v := c.Seek(prefix); k != nil && keyHasPrefix(k, prefix); k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			rec, err := unmarshalObjRecord(v)
			if err != nil {
				return err
			}
			o, err := a.readObject(tx, coll, k, rec, opts)
			if err != nil {
				return err
			}
			if err := fn(o); err != nil {
				return err
			}
		}
		return nil
	})
}
