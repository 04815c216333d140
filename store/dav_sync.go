package store

import (
	"context"
	"encoding/binary"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"
)

// RangeQuery selects calendar objects by component and time.
type RangeQuery struct {
	Component string // "" for any
	// Start and End bound the range; zero means unbounded.
	Start, End time.Time
}

// ObjectsInRange calls fn for every calendar object of coll whose summary
// (the span from its first start to its last end) meets [Start, End] and
// whose component matches. It is a superset of a CalDAV time-range match:
// the caller checks recurring or inexact objects (Summary.Exact false)
// against their content. It decrypts one small constant-size record per
// object of the collection and the metadata only of the candidates.
func (a *Account) ObjectsInRange(ctx context.Context, coll uint32, q RangeQuery, opts ObjectOptions, fn func(*Object) error) error {
	start, end := int64(math.MinInt64), int64(math.MaxInt64)
	if !q.Start.IsZero() {
		start = q.Start.Unix()
	}
	if !q.End.IsZero() {
		end = q.End.Unix()
		if q.End.After(time.Unix(end, 0)) {
			end++
		}
	}
	want := compCode(q.Component)
	return a.view(func(tx *bolt.Tx) error {
		if _, err := a.getColl(tx, coll); err != nil {
			return err
		}
		objs := tx.Bucket(bktDavObjs)
		prefix := collKey(coll)
		c := tx.Bucket(bktDavSums).Cursor()
		n := 0
		for k, v := c.Seek(prefix); k != nil && keyHasPrefix(k, prefix); k, v = c.Next() {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			s, err := a.openSum(k, v)
			if err != nil {
				return err
			}
			if (q.Component != "" && s.Comp != want) || !s.overlaps(start, end) {
				continue
			}
			ov := objs.Get(k)
			if ov == nil {
				continue
			}
			rec, err := unmarshalObjRecord(ov)
			if err != nil {
				return err
			}
			o, err := a.readObject(tx, coll, k, rec, opts)
			if err != nil {
				return err
			}
			sum := s.summary()
			sum.UID = o.UID
			o.Summary = &sum
			if err := fn(o); err != nil {
				return err
			}
		}
		return nil
	})
}

// SyncResult is what changed in a collection since a sync token (RFC 6578).
type SyncResult struct {
	// ModSeq is the collection's state now: the next sync token.
	ModSeq  uint64
	Updated []*Object // created or changed, without content
	Deleted []string  // names
}

// SyncChanges reports the objects of coll created, changed or deleted after
// since (a collection ModSeq handed out earlier; 0: everything, as an
// initial sync). It reads the account's change log, so its cost is in the
// number of changes since the token, not the size of the collection.
func (a *Account) SyncChanges(ctx context.Context, coll uint32, since uint64) (*SyncResult, error) {
	res := &SyncResult{}
	err := a.view(func(tx *bolt.Tx) error {
		cr, err := a.getColl(tx, coll)
		if err != nil {
			return err
		}
		res.ModSeq = cr.ModSeq
		if since > cr.ModSeq {
			return ErrStaleSyncToken
		}
		if since == cr.ModSeq {
			return nil
		}
		objs := tx.Bucket(bktDavObjs)
		prefix := collKey(coll)
		if since < cr.Created {
			// Initial sync (or a token from before the collection existed):
			// every member, no deletions.
			c := objs.Cursor()
			for k, v := c.Seek(prefix); k != nil && keyHasPrefix(k, prefix); k, v = c.Next() {
				rec, err := unmarshalObjRecord(v)
				if err != nil {
					return err
				}
				o, err := a.readObject(tx, coll, k, rec, ObjectOptions{})
				if err != nil {
					return err
				}
				res.Updated = append(res.Updated, o)
			}
			return nil
		}
		// The changed objects, in the order of their last change.
		seen := make(map[string]bool)
		var keys [][]byte
		c := tx.Bucket(bktChanges).Cursor()
		n := 0
		for k, v := c.Seek(putUint64(since + 1)); k != nil; k, v = c.Next() {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if len(v) < 13 || (ChangeKind(v[0]) != ChangeObjectPut && ChangeKind(v[0]) != ChangeObjectDeleted) ||
				binary.BigEndian.Uint32(v[9:]) != coll {
				continue
			}
			short := string(v[13:])
			if !seen[short] {
				seen[short] = true
				keys = append(keys, fullObjKey(coll, v[13:]))
			}
		}
		tombs := tx.Bucket(bktDavTombs)
		for _, k := range keys {
			if v := objs.Get(k); v != nil {
				rec, err := unmarshalObjRecord(v)
				if err != nil {
					return err
				}
				o, err := a.readObject(tx, coll, k, rec, ObjectOptions{})
				if err != nil {
					return err
				}
				res.Updated = append(res.Updated, o)
				continue
			}
			if v := tombs.Get(k); v != nil {
				_, name, err := a.openTomb(k, v)
				if err != nil {
					return err
				}
				res.Deleted = append(res.Deleted, name)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}
