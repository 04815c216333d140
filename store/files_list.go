package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Folder listings (WebDAV PROPFIND Depth 1). A listing reads the folder, its
// members and, when asked, their dead properties and locks in one read
// transaction: the path is walked and its names blinded once, and every
// member's sealed record is opened once. Nothing is cached in clear; the
// listing lives only as long as the caller keeps it.
//
// The transaction ends before the caller writes anything to the network, so
// a slow client never holds a read transaction open (bbolt cannot grow its
// file while one is).

// FileEntry is one resource of a listing: its description and, when
// FileListOptions asked for them, its dead properties (sorted by namespace
// and name) and the active locks that cover it. PropsErr and LocksErr say
// that those of this entry could not be read (a damaged record); the rest of
// the listing is still good.
type FileEntry struct {
	FileInfo
	Props    []FileProp
	Locks    []FileLock
	PropsErr error
	LocksErr error
}

// FileListOptions say what List reads besides each resource's FileInfo.
type FileListOptions struct {
	Members bool // a folder's members too (Depth 1); ignored for a file
	Props   bool // dead properties
	Locks   bool // the locks that cover each resource
}

// List describes the file or folder at p (the first entry) and, with
// o.Members and if p is a folder, its members sorted by name, as Stat,
// ReadDir, Props and Locks would, but from one read transaction.
func (f *Files) List(ctx context.Context, p string, o FileListOptions) ([]FileEntry, error) {
	a := f.a
	fp, err := parseFilePath(p)
	if err != nil {
		return nil, err
	}
	var out []FileEntry
	err = a.view(func(tx *bolt.Tx) error {
		out = nil
		now := time.Now()
		chain, err := a.walk(tx, fp)
		if err != nil {
			return err
		}
		target := chain[len(chain)-1]
		self := FileEntry{FileInfo: target.info()}
		if o.Props {
			self.Props, self.PropsErr = a.loadProps(tx, target.ID)
		}
		if o.Locks {
			ls, err := a.coveringLocks(tx, chain, now)
			if err == nil {
				self.Locks = publicLocks(chain, ls)
			}
			self.LocksErr = err
		}
		if !o.Members || !target.Dir {
			out = []FileEntry{self}
			return nil
		}
		if out, err = a.listMembers(ctx, tx, target.ID); err != nil {
			return err
		}
		out[0] = self
		if o.Props {
			a.memberProps(tx, out[1:])
		}
		if o.Locks {
			a.memberLocks(tx, chain, out[1:], now)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// listMembers reads the members of folder dir, sorted by name, into out[1:]
// (out[0] is left for the folder).
func (a *Account) listMembers(ctx context.Context, tx *bolt.Tx, dir uint64) ([]FileEntry, error) {
	var ids []uint64
	prefix := nodeKey(dir)
	c := tx.Bucket(bktFileChildren).Cursor()
	for k, v := c.Seek(prefix); len(k) > 8 && bytes.Equal(k[:8], prefix); k, v = c.Next() {
		if len(v) != 8 {
			return nil, errBadRecord
		}
		ids = append(ids, binary.BigEndian.Uint64(v))
	}
	// In id order the records are read front to back: members written
	// together sit next to each other (ids are a counter), so the cursor
	// mostly steps instead of searching from the root for each.
	slices.Sort(ids)
	out := make([]FileEntry, len(ids))
	names := nameArena{buf: make([]byte, 0, 48*len(ids)), ends: make([]int, 0, 3*len(ids))}
	g := newSortedGetter(tx.Bucket(bktFileNodes))
	for i, id := range ids {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		v := g.get(nodeKey(id))
		if v == nil {
			return nil, fmt.Errorf("file node %d: %w", id, errBadRecord)
		}
		if err := a.unmarshalNodeInfo(id, v, &out[i].FileInfo, &names); err != nil {
			return nil, err
		}
	}
	names.finish(out)
	return sortByName(out), nil
}

// sortByName returns entries sorted by name in out[1:] of a new slice. It
// sorts small (name, index) pairs and then moves each entry once: swapping
// whole entries costs more than comparing their names.
func sortByName(entries []FileEntry) []FileEntry {
	type key struct {
		name string
		i    int
	}
	keys := make([]key, len(entries))
	for i := range entries {
		keys[i] = key{entries[i].Name, i}
	}
	slices.SortFunc(keys, func(x, y key) int { return strings.Compare(x.name, y.name) })
	out := make([]FileEntry, 1+len(entries))
	for i, k := range keys {
		out[1+i] = entries[k.i]
	}
	return out
}

// memberProps reads the dead properties of a folder's members.
func (a *Account) memberProps(tx *bolt.Tx, members []FileEntry) {
	b := tx.Bucket(bktFileProps)
	if k, _ := b.Cursor().First(); k == nil { // nobody has any
		return
	}
	for i := range members {
		m := &members[i]
		m.Props, m.PropsErr = a.loadProps(tx, m.ID)
	}
}

// memberLocks finds the locks that cover each member of the folder at the
// end of chain: the depth-infinity locks of the folder and its ancestors,
// then those rooted at the member, as coveringLocks orders them.
func (a *Account) memberLocks(tx *bolt.Tx, chain []*fileNode, members []FileEntry, now time.Time) {
	if k, _ := tx.Bucket(bktFileLocks).Cursor().First(); k == nil { // no locks at all
		return
	}
	var inherited []FileLock
	var err error
	for _, n := range chain {
		var ls []*fileLock
		if ls, err = a.nodeLocks(tx, n.ID, now); err != nil {
			break
		}
		for _, l := range ls {
			if l.Infinite {
				inherited = append(inherited, publicLocks(chain, []*fileLock{l})[0])
			}
		}
	}
	dir := chainPath(chain, len(chain)-1)
	for i := range members {
		m := &members[i]
		if err != nil {
			m.LocksErr = err
			continue
		}
		ls, lerr := a.nodeLocks(tx, m.ID, now)
		if lerr != nil {
			m.LocksErr = lerr
			continue
		}
		if len(inherited) == 0 && len(ls) == 0 {
			continue
		}
		m.Locks = slices.Clip(inherited)
		root := m.Name
		if dir != "" {
			root = dir + "/" + m.Name
		}
		for _, l := range ls {
			m.Locks = append(m.Locks, l.public(root, m.Dir))
		}
	}
}

// sortedGetter reads keys of a bucket in ascending order with one cursor:
// it steps forward while the wanted key is a few records ahead and searches
// from the root only when it is further away.
type sortedGetter struct {
	c    *bolt.Cursor
	k, v []byte
}

func newSortedGetter(b *bolt.Bucket) *sortedGetter { return &sortedGetter{c: b.Cursor()} }

// get returns the value of key (nil if there is none); keys must come in
// ascending order.
func (g *sortedGetter) get(key []byte) []byte {
	const maxSteps = 8
	if g.k == nil {
		g.k, g.v = g.c.Seek(key)
	}
	for step := 0; g.k != nil && bytes.Compare(g.k, key) < 0; step++ {
		if step == maxSteps {
			g.k, g.v = g.c.Seek(key)
			break
		}
		g.k, g.v = g.c.Next()
	}
	if g.k == nil || !bytes.Equal(g.k, key) {
		return nil
	}
	return g.v
}

// unmarshalNodeInfo decodes what a listing shows of a node record into fi
// (as unmarshalNode and info would): its name and content type go to names,
// which hands them out at the end in one allocation.
func (a *Account) unmarshalNodeInfo(id uint64, v []byte, fi *FileInfo, names *nameArena) error {
	d := decoder{b: v}
	if d.byte() != fileNodeVersion {
		return errBadRecord
	}
	flags := d.byte()
	d.uvarint() // parent
	created, modified := d.varint(), d.varint()
	size := d.uvarint()
	version := d.uvarint()
	if flags&nodeFlagBlob != 0 {
		d.bytes(16 + 1)
		d.uvarint()
		d.bytes(int(d.uvarint()))
	}
	sealed := d.bytes(int(d.uvarint()))
	if d.err {
		return errBadRecord
	}
	secret, err := a.rec.Open("fnodes", nodeKey(id), sealed)
	if err != nil {
		return fmt.Errorf("file node %d: %w", id, err)
	}
	sd := decoder{b: secret}
	name := sd.bytes(int(sd.uvarint()))
	if sd.err {
		return errBadRecord
	}
	*fi = FileInfo{ID: id, Dir: flags&nodeFlagDir != 0, Size: int64(size),
		Created: time.Unix(0, created), Modified: time.Unix(0, modified)}
	names.add(name, sd.b, id, version)
	return nil
}

// nameArena gathers the names, content types and entity tags of a listing
// in one buffer, so that a listing of n members costs a few allocations
// instead of 3n. Entries' strings are set by finish.
type nameArena struct {
	buf  []byte
	ends []int // per entry: end of name, end of content type, end of etag
}

func (n *nameArena) add(name, ctype []byte, id, version uint64) {
	n.buf = append(n.buf, name...)
	e1 := len(n.buf)
	n.buf = append(n.buf, ctype...)
	e2 := len(n.buf)
	n.buf = appendETag(n.buf, id, version)
	n.ends = append(n.ends, e1, e2, len(n.buf))
}

// finish sets Name, ContentType and ETag of out[i] for the i-th add.
func (n *nameArena) finish(out []FileEntry) {
	s := string(n.buf)
	start := 0
	for i := range out {
		e := n.ends[3*i : 3*i+3]
		fi := &out[i].FileInfo
		fi.Name, fi.ContentType, fi.ETag = s[start:e[0]], s[e[0]:e[1]], s[e[1]:e[2]]
		start = e[2]
	}
}

// appendETag appends a node's entity tag, as FileInfo.ETag.
func appendETag(b []byte, id, version uint64) []byte {
	b = strconv.AppendUint(b, id, 16)
	b = append(b, '-')
	return strconv.AppendUint(b, version, 16)
}
