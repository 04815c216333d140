package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"kreide/crypto"
)

// Buckets of the calendar and contact model (see dav_doc.go for what each
// holds and what it leaks).
var (
	bktDavColls = []byte("davcolls")
	bktDavSlugs = []byte("davslugs")
	bktDavObjs  = []byte("davobjs")
	bktDavData  = []byte("davdata")
	bktDavSums  = []byte("davsums")
	bktDavUIDs  = []byte("davuids")
	bktDavTombs = []byte("davtombs")

	metaDavSeq = []byte("davseq")
)

// davBuckets are the buckets of the calendar and contact model.
var davBuckets = [][]byte{bktDavColls, bktDavSlugs, bktDavObjs, bktDavData, bktDavSums, bktDavUIDs, bktDavTombs}

// CollectionKind says what a DAV collection holds.
type CollectionKind uint8

// Kinds of collections. The numbers are stored: never reuse one.
const (
	KindCalendar    CollectionKind = 1 // events, tasks (CalDAV)
	KindAddressBook CollectionKind = 2 // contacts (CardDAV)
)

func (k CollectionKind) valid() bool { return k == KindCalendar || k == KindAddressBook }

// Limits on what clients may store in a collection's properties.
const (
	maxSlugLen     = 255
	maxPropText    = 4096
	maxDeadProps   = 64
	maxDeadPropLen = 16 << 10
	maxDeadTotal   = 48 << 10
)

// Calendar components a calendar collection may hold.
const (
	CompEvent   = "VEVENT"
	CompTodo    = "VTODO"
	CompJournal = "VJOURNAL"
)

// Collection is a calendar or an address book, decrypted.
type Collection struct {
	ID   uint32
	Kind CollectionKind
	// Slug is the collection's URL segment, chosen by the client that made it
	// (it may be something a person typed, so it is sealed and looked up
	// through a blind index).
	Slug        string
	DisplayName string
	Description string
	Color       string // Apple's calendar-color, "#RRGGBB" or "#RRGGBBAA"
	Order       string // Apple's calendar-order
	// Components are the calendar components the collection accepts
	// (CompEvent, CompTodo, CompJournal); empty for address books.
	Components []string
	// Dead are the other properties clients set (PROPPATCH): "{namespace}name"
	// -> the property's content as an XML fragment. The store does not
	// interpret them.
	Dead map[string]string
	// ModSeq changes with every change to the collection or its objects:
	// CalendarServer's getctag and the DAV sync-token.
	ModSeq uint64
	// Created is the modseq of its creation: sync tokens before it are stale.
	Created uint64
}

// Accepts reports whether a calendar collection takes comp.
func (c *Collection) Accepts(comp string) bool {
	return c.Kind == KindCalendar && slices.Contains(c.Components, comp)
}

// CollectionPatch changes a collection's properties (PROPPATCH). nil fields
// stay; a nil value in Dead removes that property.
type CollectionPatch struct {
	DisplayName *string
	Description *string
	Color       *string
	Order       *string
	Dead        map[string]*string
}

// collRecord is a collection's entry in davcolls: kind and counters in
// clear, everything else sealed.
type collRecord struct {
	Kind    CollectionKind `json:"k"`
	ModSeq  uint64         `json:"m"`
	Created uint64         `json:"c"`
	Sealed  []byte         `json:"x"`
}

type collSecret struct {
	Slug        string            `json:"s"`
	DisplayName string            `json:"n,omitempty"`
	Description string            `json:"d,omitempty"`
	Color       string            `json:"co,omitempty"`
	Order       string            `json:"o,omitempty"`
	Components  []string          `json:"cp,omitempty"`
	Dead        map[string]string `json:"p,omitempty"`
}

func collKey(id uint32) []byte { return binary.BigEndian.AppendUint32(nil, id) }

func (a *Account) slugIndex(kind CollectionKind, slug string) []byte {
	return crypto.Blind(a.keys.Index, "dav-slug", append([]byte{byte(kind)}, slug...))
}

func validDAVName(s string) error {
	if s == "" || s == "." || s == ".." || len(s) > maxSlugLen || !utf8.ValidString(s) ||
		strings.ContainsFunc(s, func(r rune) bool { return r == '/' || r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w: collection name", ErrInvalid)
	}
	return nil
}

func validPropText(s string) error {
	if len(s) > maxPropText || !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return fmt.Errorf("%w: property value", ErrInvalid)
	}
	return nil
}

func (s *collSecret) validate() error {
	if err := validDAVName(s.Slug); err != nil {
		return err
	}
	for _, v := range []string{s.DisplayName, s.Description, s.Color, s.Order} {
		if err := validPropText(v); err != nil {
			return err
		}
	}
	for _, c := range s.Components {
		if c != CompEvent && c != CompTodo && c != CompJournal {
			return fmt.Errorf("%w: calendar component %q", ErrInvalid, c)
		}
	}
	if len(s.Dead) > maxDeadProps {
		return fmt.Errorf("%w: too many properties", ErrInvalid)
	}
	total := 0
	for k, v := range s.Dead {
		if k == "" || len(k) > 1024 || len(v) > maxDeadPropLen || !utf8.ValidString(k+v) {
			return fmt.Errorf("%w: property", ErrInvalid)
		}
		total += len(k) + len(v)
	}
	if total > maxDeadTotal {
		return fmt.Errorf("%w: properties too large", ErrInvalid)
	}
	return nil
}

func (a *Account) getColl(tx *bolt.Tx, id uint32) (*collRecord, error) {
	v := tx.Bucket(bktDavColls).Get(collKey(id))
	if v == nil {
		return nil, fmt.Errorf("%w: collection", ErrNotFound)
	}
	r := new(collRecord)
	if err := json.Unmarshal(v, r); err != nil {
		return nil, err
	}
	return r, nil
}

func (a *Account) putColl(tx *bolt.Tx, id uint32, r *collRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Bucket(bktDavColls).Put(collKey(id), v)
}

func (a *Account) openColl(id uint32, r *collRecord) (Collection, *collSecret, error) {
	c := Collection{ID: id, Kind: r.Kind, ModSeq: r.ModSeq, Created: r.Created}
	plain, err := a.rec.Open("davcolls", collKey(id), r.Sealed)
	if err != nil {
		return c, nil, fmt.Errorf("collection %d: %w", id, err)
	}
	s := new(collSecret)
	if err := json.Unmarshal(plain, s); err != nil {
		return c, nil, err
	}
	c.Slug, c.DisplayName, c.Description, c.Color, c.Order = s.Slug, s.DisplayName, s.Description, s.Color, s.Order
	c.Components = slices.Clone(s.Components)
	c.Dead = maps.Clone(s.Dead)
	return c, s, nil
}

func (a *Account) sealColl(id uint32, r *collRecord, s *collSecret) {
	plain, _ := json.Marshal(s)
	r.Sealed = a.rec.Seal("davcolls", collKey(id), plain)
}

// touchColl gives a collection a new modseq (its ctag) after a change.
func (a *Account) touchColl(tx *bolt.Tx, id uint32, modseq uint64) error {
	r, err := a.getColl(tx, id)
	if err != nil {
		return err
	}
	r.ModSeq = modseq
	return a.putColl(tx, id, r)
}

// createCollTx needs no handle: it also runs while a new account is created.
func (a *Account) createCollTx(tx *bolt.Tx, c Collection) (Collection, error) {
	if !c.Kind.valid() {
		return Collection{}, fmt.Errorf("%w: collection kind", ErrInvalid)
	}
	if c.Kind == KindAddressBook {
		c.Components = nil
	} else if len(c.Components) == 0 {
		c.Components = []string{CompEvent, CompTodo}
	}
	s := &collSecret{Slug: c.Slug, DisplayName: c.DisplayName, Description: c.Description, Color: c.Color,
		Order: c.Order, Components: slices.Compact(slices.Sorted(slices.Values(c.Components))), Dead: c.Dead}
	if err := s.validate(); err != nil {
		return Collection{}, err
	}
	slugs := tx.Bucket(bktDavSlugs)
	idx := a.slugIndex(c.Kind, c.Slug)
	if slugs.Get(idx) != nil {
		return Collection{}, fmt.Errorf("%w: collection", ErrExists)
	}
	meta := tx.Bucket(bktAcctMeta)
	id := getUint32(meta.Get(metaDavSeq)) + 1
	if err := meta.Put(metaDavSeq, collKey(id)); err != nil {
		return Collection{}, err
	}
	modseq := nextModSeq(tx)
	r := &collRecord{Kind: c.Kind, ModSeq: modseq, Created: modseq}
	a.sealColl(id, r, s)
	if err := a.putColl(tx, id, r); err != nil {
		return Collection{}, err
	}
	if err := slugs.Put(idx, collKey(id)); err != nil {
		return Collection{}, err
	}
	if err := appendChange(tx, Change{ModSeq: modseq, Kind: ChangeCollectionPut, Collection: id}); err != nil {
		return Collection{}, err
	}
	out, _, err := a.openColl(id, r)
	return out, err
}

// Default collections of a new account. The display names are German, as
// kreide's users are; clients let people rename them.
var defaultCollections = []Collection{
	{Kind: KindCalendar, Slug: "calendar", DisplayName: "Kalender", Components: []string{CompEvent}, Color: "#1E88E5"},
	{Kind: KindCalendar, Slug: "tasks", DisplayName: "Aufgaben", Components: []string{CompTodo}, Color: "#43A047"},
	{Kind: KindAddressBook, Slug: "contacts", DisplayName: "Kontakte"},
}

// createDefaultDAV gives a new account its calendar, task list and address book.
func (a *Account) createDefaultDAV(tx *bolt.Tx) error {
	for _, c := range defaultCollections {
		if _, err := a.createCollTx(tx, c); err != nil {
			return err
		}
	}
	return nil
}

// CreateCollection creates a calendar or address book. Slug must be unused
// among collections of its kind (ErrExists).
func (a *Account) CreateCollection(ctx context.Context, c Collection) (Collection, error) {
	var out Collection
	err := a.update(func(tx *bolt.Tx) error {
		var err error
		out, err = a.createCollTx(tx, c)
		return err
	})
	return out, err
}

// Collections lists the collections of a kind in creation order.
func (a *Account) Collections(ctx context.Context, kind CollectionKind) ([]Collection, error) {
	var out []Collection
	err := a.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bktDavColls).ForEach(func(k, v []byte) error {
			var r collRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			if r.Kind != kind {
				return nil
			}
			c, _, err := a.openColl(binary.BigEndian.Uint32(k), &r)
			if err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	})
	return out, err
}

// Collection returns one collection by id.
func (a *Account) Collection(ctx context.Context, id uint32) (Collection, error) {
	var out Collection
	err := a.view(func(tx *bolt.Tx) error {
		r, err := a.getColl(tx, id)
		if err != nil {
			return err
		}
		out, _, err = a.openColl(id, r)
		return err
	})
	return out, err
}

// CollectionBySlug finds a collection by its URL segment.
func (a *Account) CollectionBySlug(ctx context.Context, kind CollectionKind, slug string) (Collection, error) {
	var out Collection
	err := a.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bktDavSlugs).Get(a.slugIndex(kind, slug))
		if v == nil {
			return fmt.Errorf("%w: collection", ErrNotFound)
		}
		id := getUint32(v)
		r, err := a.getColl(tx, id)
		if err != nil {
			return err
		}
		if r.Kind != kind {
			return fmt.Errorf("%w: collection", ErrNotFound)
		}
		out, _, err = a.openColl(id, r)
		return err
	})
	return out, err
}

// UpdateCollection applies a patch atomically: all of it or nothing.
func (a *Account) UpdateCollection(ctx context.Context, id uint32, p CollectionPatch) (Collection, error) {
	var out Collection
	err := a.update(func(tx *bolt.Tx) error {
		r, err := a.getColl(tx, id)
		if err != nil {
			return err
		}
		_, s, err := a.openColl(id, r)
		if err != nil {
			return err
		}
		for _, f := range []struct {
			dst *string
			src *string
		}{{&s.DisplayName, p.DisplayName}, {&s.Description, p.Description}, {&s.Color, p.Color}, {&s.Order, p.Order}} {
			if f.src != nil {
				*f.dst = *f.src
			}
		}
		for k, v := range p.Dead {
			if v == nil {
				delete(s.Dead, k)
				continue
			}
			if s.Dead == nil {
				s.Dead = make(map[string]string)
			}
			s.Dead[k] = *v
		}
		if err := s.validate(); err != nil {
			return err
		}
		modseq := nextModSeq(tx)
		r.ModSeq = modseq
		a.sealColl(id, r, s)
		if err := a.putColl(tx, id, r); err != nil {
			return err
		}
		if err := appendChange(tx, Change{ModSeq: modseq, Kind: ChangeCollectionPut, Collection: id}); err != nil {
			return err
		}
		out, _, err = a.openColl(id, r)
		return err
	})
	return out, err
}

// DeleteCollection removes a collection with all its objects.
func (a *Account) DeleteCollection(ctx context.Context, id uint32) error {
	var removed []blobRef
	err := a.update(func(tx *bolt.Tx) error {
		removed = nil
		r, err := a.getColl(tx, id)
		if err != nil {
			return err
		}
		_, s, err := a.openColl(id, r)
		if err != nil {
			return err
		}
		prefix := collKey(id)
		var freed int64
		objs := tx.Bucket(bktDavObjs)
		c := objs.Cursor()
		for k, v := c.Seek(prefix); k != nil && keyHasPrefix(k, prefix); k, v = c.Seek(prefix) {
			rec, err := unmarshalObjRecord(v)
			if err != nil {
				return err
			}
			if err := a.dropContent(tx, k, rec); err != nil {
				return err
			}
			if !rec.Inline {
				removed = append(removed, rec.Blob)
			}
			freed += rec.Size
			if err := objs.Delete(k); err != nil {
				return err
			}
		}
		for _, b := range [][]byte{bktDavSums, bktDavUIDs, bktDavTombs} {
			if err := deleteKeyPrefix(tx.Bucket(b), prefix); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bktDavSlugs).Delete(a.slugIndex(r.Kind, s.Slug)); err != nil {
			return err
		}
		if err := tx.Bucket(bktDavColls).Delete(prefix); err != nil {
			return err
		}
		if err := a.h.charge(tx, -freed); err != nil {
			return err
		}
		return appendChange(tx, Change{ModSeq: nextModSeq(tx), Kind: ChangeCollectionDelete, Collection: id})
	})
	if err != nil {
		return err
	}
	a.h.unlinkBlobs(removed)
	return nil
}

func keyHasPrefix(k, prefix []byte) bool {
	return len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix)
}

func deleteKeyPrefix(b *bolt.Bucket, prefix []byte) error {
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && keyHasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
