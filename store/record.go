package store

import (
	"encoding/binary"
	"errors"
	"time"
)

// How a message's content key is wrapped.
const (
	keyWrapBlob   = 1 // under the account's blob key (written while unlocked)
	keyWrapSealed = 2 // HPKE-sealed to the account's public key (delivered while locked)
	// Delivered while locked: wrapped under a delivery key (first 8 bytes of
	// Key name it) which is itself HPKE-sealed to the public key once per
	// handle, so a delivery costs an AEAD instead of an HPKE seal.
	keyWrapDelivery = 3
)

// msgRecord is a message's entry in the msgs bucket. It is read for every
// FETCH FLAGS, so it is a compact binary encoding, not JSON. The only fields
// in clear are those delivery needs without the user's key: sizes, dates,
// ids. Flags are sealed under the record key.
type msgRecord struct {
	ModSeq  uint64
	Size    int64
	Date    time.Time
	Blob    blobRef
	KeyWrap uint8
	Key     []byte // wrapped content key
	Flags   []byte // sealed flags, nil when none
}

const msgRecordVersion = 1

var errBadRecord = errors.New("store: malformed record")

func (r *msgRecord) marshal() []byte {
	b := make([]byte, 0, 64+len(r.Key)+len(r.Flags))
	b = append(b, msgRecordVersion)
	b = binary.AppendUvarint(b, r.ModSeq)
	b = binary.AppendUvarint(b, uint64(r.Size))
	b = binary.AppendVarint(b, r.Date.Unix())
	_, off := r.Date.Zone()
	b = binary.AppendVarint(b, int64(off))
	b = append(b, r.Blob.ID[:]...)
	if r.Blob.Inline {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(r.Blob.EncSize))
	b = append(b, r.KeyWrap)
	b = binary.AppendUvarint(b, uint64(len(r.Key)))
	b = append(b, r.Key...)
	b = binary.AppendUvarint(b, uint64(len(r.Flags)))
	b = append(b, r.Flags...)
	return b
}

// unmarshalMsgRecord copies what it keeps: bbolt values die with their transaction.
func unmarshalMsgRecord(b []byte) (*msgRecord, error) {
	d := decoder{b: b}
	if d.byte() != msgRecordVersion {
		return nil, errBadRecord
	}
	r := &msgRecord{}
	r.ModSeq = d.uvarint()
	r.Size = int64(d.uvarint())
	sec := d.varint()
	off := d.varint()
	r.Date = time.Unix(sec, 0).In(time.FixedZone("", int(off)))
	copy(r.Blob.ID[:], d.bytes(16))
	r.Blob.Inline = d.byte() == 1
	r.Blob.EncSize = int64(d.uvarint())
	r.KeyWrap = d.byte()
	r.Key = append([]byte(nil), d.bytes(int(d.uvarint()))...)
	if n := int(d.uvarint()); n > 0 {
		r.Flags = append([]byte(nil), d.bytes(n)...)
	}
	if d.err {
		return nil, errBadRecord
	}
	return r, nil
}

type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.err = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if n < 0 || n > len(d.b) {
		d.err = true
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func nowSecond() time.Time { return time.Now().Truncate(time.Second) }
