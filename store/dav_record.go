package store

import (
	"encoding/binary"
	"math"
	"time"

	"kreide/crypto"
)

// objRecord is a DAV object's entry in davobjs. In clear: modseq, size,
// modification time and where the content is; the name, ETag, UID and
// component type are sealed (objMeta).
type objRecord struct {
	ModSeq  uint64
	Size    int64 // plaintext bytes, charged to the quota
	ModTime time.Time
	Inline  bool    // content sealed in davdata under the object's key
	Blob    blobRef // otherwise: an encrypted file
	Key     []byte  // the file's content key, wrapped under the blob key
	Meta    []byte  // sealed objMeta
}

type objMeta struct {
	Name, ETag, UID, Comp string
}

// Sealed metadata is read for every object listed, so it is a compact
// binary encoding: a version byte and four length-prefixed strings.
const objMetaVersion = 1

func (m *objMeta) marshal() []byte {
	b := make([]byte, 0, 8+len(m.Name)+len(m.ETag)+len(m.UID)+len(m.Comp))
	b = append(b, objMetaVersion)
	for _, s := range []string{m.Name, m.ETag, m.UID, m.Comp} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func unmarshalObjMeta(b []byte) (objMeta, error) {
	d := decoder{b: b}
	var m objMeta
	if d.byte() != objMetaVersion {
		return m, errBadRecord
	}
	for _, s := range []*string{&m.Name, &m.ETag, &m.UID, &m.Comp} {
		*s = string(d.bytes(int(d.uvarint())))
	}
	if d.err {
		return m, errBadRecord
	}
	return m, nil
}

const objRecordVersion = 1

func (r *objRecord) marshal() []byte {
	b := make([]byte, 0, 48+len(r.Key)+len(r.Meta))
	b = append(b, objRecordVersion)
	b = binary.AppendUvarint(b, r.ModSeq)
	b = binary.AppendUvarint(b, uint64(r.Size))
	b = binary.AppendVarint(b, r.ModTime.Unix())
	if r.Inline {
		b = append(b, 1)
	} else {
		b = append(b, 0)
		b = append(b, r.Blob.ID[:]...)
		b = binary.AppendUvarint(b, uint64(r.Blob.EncSize))
		b = binary.AppendUvarint(b, uint64(len(r.Key)))
		b = append(b, r.Key...)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Meta)))
	return append(b, r.Meta...)
}

// unmarshalObjRecord copies what it keeps: bbolt values die with their transaction.
func unmarshalObjRecord(b []byte) (*objRecord, error) {
	d := decoder{b: b}
	if d.byte() != objRecordVersion {
		return nil, errBadRecord
	}
	r := &objRecord{}
	r.ModSeq = d.uvarint()
	r.Size = int64(d.uvarint())
	r.ModTime = time.Unix(d.varint(), 0)
	r.Inline = d.byte() == 1
	if !r.Inline {
		copy(r.Blob.ID[:], d.bytes(16))
		r.Blob.EncSize = int64(d.uvarint())
		r.Key = append([]byte(nil), d.bytes(int(d.uvarint()))...)
	}
	r.Meta = append([]byte(nil), d.bytes(int(d.uvarint()))...)
	if d.err {
		return nil, errBadRecord
	}
	return r, nil
}

func (a *Account) sealObjMeta(k []byte, m objMeta) []byte {
	return a.rec.Seal("davobjs", k, m.marshal())
}

func (a *Account) openObjMeta(k []byte, r *objRecord) (objMeta, error) {
	plain, err := a.rec.Open("davobjs", k, r.Meta)
	if err != nil {
		return objMeta{}, err
	}
	return unmarshalObjMeta(plain)
}

func davContentAAD(account string, id [16]byte) []byte {
	return append([]byte("dav-content|"+account+"|"), id[:]...)
}

// Component codes in sealed summaries.
var compCodes = []string{"", CompEvent, CompTodo, CompJournal}

func compCode(c string) byte {
	for i, s := range compCodes {
		if s == c {
			return byte(i)
		}
	}
	return 0
}

// sumRecord is what davsums holds for a calendar object, sealed: component,
// whether the range is exact, and the first start and last end of its
// occurrences in Unix seconds (math.MinInt64 / math.MaxInt64: unbounded).
// It is constant-size, so the ciphertext says nothing about the event.
type sumRecord struct {
	Comp       byte
	Exact      bool
	Start, End int64
}

func (s sumRecord) marshal() []byte {
	b := make([]byte, 18)
	b[0] = s.Comp
	if s.Exact {
		b[1] = 1
	}
	binary.BigEndian.PutUint64(b[2:], uint64(s.Start))
	binary.BigEndian.PutUint64(b[10:], uint64(s.End))
	return b
}

func unmarshalSum(b []byte) (sumRecord, bool) {
	if len(b) != 18 {
		return sumRecord{}, false
	}
	return sumRecord{Comp: b[0], Exact: b[1] == 1, Start: int64(binary.BigEndian.Uint64(b[2:])),
		End: int64(binary.BigEndian.Uint64(b[10:]))}, true
}

func newSum(s *ObjectSummary) sumRecord {
	r := sumRecord{Comp: compCode(s.Component), Exact: s.Exact, Start: math.MinInt64, End: math.MaxInt64}
	if !s.Start.IsZero() {
		r.Start = s.Start.Unix() // floor (Unix truncates toward the past for positive times)
		if s.Start.Before(time.Unix(r.Start, 0)) {
			r.Start--
		}
	}
	if !s.End.IsZero() {
		r.End = s.End.Unix()
		if s.End.After(time.Unix(r.End, 0)) {
			r.End++ // ceiling: the stored range must contain the real one
		}
	}
	return r
}

func (s sumRecord) summary() ObjectSummary {
	out := ObjectSummary{Component: compCodes[min(int(s.Comp), len(compCodes)-1)], Exact: s.Exact}
	if s.Start != math.MinInt64 {
		out.Start = time.Unix(s.Start, 0).UTC()
	}
	if s.End != math.MaxInt64 {
		out.End = time.Unix(s.End, 0).UTC()
	}
	return out
}

// overlaps reports whether the closed ranges [s.Start, s.End] and
// [start, end] meet (start, end in Unix seconds, already widened).
func (s sumRecord) overlaps(start, end int64) bool {
	return s.Start <= end && s.End >= start
}

func (a *Account) sealSum(k []byte, s sumRecord) []byte {
	return a.rec.Seal("davsums", k, s.marshal())
}

func (a *Account) openSum(k, v []byte) (sumRecord, error) {
	plain, err := a.rec.Open("davsums", k, v)
	if err != nil {
		return sumRecord{}, err
	}
	s, ok := unmarshalSum(plain)
	if !ok {
		return s, errBadRecord
	}
	return s, nil
}

// tombstone: modseq of the deletion in clear, the name sealed.
func (a *Account) sealTomb(k []byte, modseq uint64, name string) []byte {
	b := binary.BigEndian.AppendUint64(nil, modseq)
	return append(b, a.rec.Seal("davtombs", k, []byte(name))...)
}

func (a *Account) openTomb(k, v []byte) (uint64, string, error) {
	if len(v) < 8 {
		return 0, "", errBadRecord
	}
	name, err := a.rec.Open("davtombs", k, v[8:])
	return binary.BigEndian.Uint64(v), string(name), err
}

func (a *Account) objKey(coll uint32, name string) []byte {
	ck := collKey(coll)
	return append(ck, crypto.Blind(a.keys.Index, "dav-object", append(collKey(coll), name...))...)
}

func (a *Account) uidKey(coll uint32, uid string) []byte {
	ck := collKey(coll)
	return append(ck, crypto.Blind(a.keys.Index, "dav-uid", append(collKey(coll), uid...))...)
}
