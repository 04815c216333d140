package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Dead properties (RFC 4918 section 4): whatever XML a client stores on a
// file or folder with PROPPATCH, for example Windows' Win32FileAttributes.
// The store keeps them opaque and sealed; the protocol adapter decides which
// names are live (computed) and refuses to store those.

// FilePropName names a property by XML namespace and local name.
type FilePropName struct{ Space, Local string }

// FileProp is a dead property. Value is its content as an XML fragment
// that declares every namespace it uses.
type FileProp struct {
	FilePropName
	Value []byte
}

// FilePropPatch sets (or with Remove, removes) one property.
type FilePropPatch struct {
	FilePropName
	Value  []byte
	Remove bool
}

// Limits of the dead properties of one file or folder; beyond them
// SetProps fails with ErrOverQuota (HTTP 507, as RFC 4918 says).
const (
	maxFileProps      = 256
	maxFilePropsBytes = 64 << 10
)

func marshalProps(ps []FileProp) []byte {
	b := binary.AppendUvarint(nil, uint64(len(ps)))
	for _, p := range ps {
		for _, f := range []string{p.Space, p.Local, string(p.Value)} {
			b = binary.AppendUvarint(b, uint64(len(f)))
			b = append(b, f...)
		}
	}
	return b
}

func unmarshalProps(b []byte) ([]FileProp, error) {
	d := decoder{b: b}
	n := d.uvarint()
	if n > maxFileProps*2 {
		return nil, errBadRecord
	}
	out := make([]FileProp, 0, n)
	for range n {
		var f [3]string
		for i := range f {
			f[i] = string(d.bytes(int(d.uvarint())))
		}
		out = append(out, FileProp{FilePropName{f[0], f[1]}, []byte(f[2])})
	}
	if d.err {
		return nil, errBadRecord
	}
	return out, nil
}

func (a *Account) loadProps(tx *bolt.Tx, id uint64) ([]FileProp, error) {
	v := tx.Bucket(bktFileProps).Get(nodeKey(id))
	if v == nil {
		return nil, nil
	}
	plain, err := a.rec.Open("fprops", nodeKey(id), v)
	if err != nil {
		return nil, fmt.Errorf("file properties: %w", err)
	}
	return unmarshalProps(plain)
}

func (a *Account) putProps(tx *bolt.Tx, id uint64, ps []FileProp) error {
	if len(ps) == 0 {
		return tx.Bucket(bktFileProps).Delete(nodeKey(id))
	}
	return tx.Bucket(bktFileProps).Put(nodeKey(id), a.rec.Seal("fprops", nodeKey(id), marshalProps(ps)))
}

// copyProps gives node to the dead properties of node from (sealed anew:
// the record key binds them to their node).
func (a *Account) copyProps(tx *bolt.Tx, from, to uint64) error {
	ps, err := a.loadProps(tx, from)
	if err != nil || len(ps) == 0 {
		return err
	}
	return a.putProps(tx, to, ps)
}

// Props returns the dead properties of p, sorted by namespace and name.
func (f *Files) Props(ctx context.Context, p string) ([]FileProp, error) {
	a := f.a
	fp, err := parseFilePath(p)
	if err != nil {
		return nil, err
	}
	var out []FileProp
	err = a.view(func(tx *bolt.Tx) error {
		chain, err := a.walk(tx, fp)
		if err != nil {
			return err
		}
		out, err = a.loadProps(tx, chain[len(chain)-1].ID)
		return err
	})
	return out, err
}

func comparePropNames(x, y FilePropName) int {
	if c := strings.Compare(x.Space, y.Space); c != 0 {
		return c
	}
	return strings.Compare(x.Local, y.Local)
}

// SetProps applies patch to the dead properties of p in order, all or
// nothing (RFC 4918 section 9.2). tokens are the submitted lock tokens.
func (f *Files) SetProps(ctx context.Context, p string, patch []FilePropPatch, tokens []string) error {
	a := f.a
	fp, err := parseFilePath(p)
	if err != nil {
		return err
	}
	for _, op := range patch {
		if op.Local == "" || len(op.Local) > 1024 || len(op.Space) > 1024 {
			return fmt.Errorf("%w: property name", ErrInvalid)
		}
	}
	return a.update(func(tx *bolt.Tx) error {
		chain, err := a.walk(tx, fp)
		if err != nil {
			return err
		}
		if err := a.mayChange(tx, chain, tokens, time.Now()); err != nil {
			return err
		}
		n := chain[len(chain)-1]
		ps, err := a.loadProps(tx, n.ID)
		if err != nil {
			return err
		}
		for _, op := range patch {
			i := slices.IndexFunc(ps, func(q FileProp) bool { return q.FilePropName == op.FilePropName })
			switch {
			case op.Remove && i >= 0:
				ps = slices.Delete(ps, i, i+1)
			case op.Remove:
			case i >= 0:
				ps[i].Value = op.Value
			default:
				ps = append(ps, FileProp{op.FilePropName, op.Value})
			}
		}
		size := 0
		for _, q := range ps {
			size += len(q.Space) + len(q.Local) + len(q.Value)
		}
		if len(ps) > maxFileProps || size > maxFilePropsBytes {
			return ErrOverQuota
		}
		slices.SortFunc(ps, func(x, y FileProp) int { return comparePropNames(x.FilePropName, y.FilePropName) })
		if n.LockNull {
			n.LockNull = false
			if err := a.putNode(tx, n); err != nil {
				return err
			}
		}
		return a.putProps(tx, n.ID, ps)
	})
}
