package store

// The file tree (WebDAV) of an account.
//
// # Buckets
//
//	fnodes     node id (8 bytes) -> fileNode: kind, parent id, sizes, dates,
//	           content version, blob ref and wrapped content key in clear
//	           enough for quota and sweeps; the name and content type sealed
//	           under the record key. Node 1 is the root.
//	fchildren  parent id || HMAC(index key, "file-name", parent id || name)
//	           -> child id: the name index of every folder; a prefix scan
//	           lists a folder without revealing names
//	fprops     node id -> dead properties (PROPPATCH), sealed
//	flocks     node id || lock token -> lock (scope, depth, timeout, expiry),
//	           owner XML sealed. Locks survive restarts.
//
// File content is a blob (blob.go) with its own random content key, wrapped
// under the blob key with an AAD naming the account and the blob id. Every
// write makes a new blob under a new key: content is never re-encrypted in
// place. COPY hard-links the blob (same ciphertext under the same key, re-
// wrapped for the new blob id): nothing new is encrypted, so no key ever
// encrypts two different plaintexts.
//
// # Write order
//
// An upload streams into a new blob; finish() fsyncs it and its directory.
// Then one bbolt transaction points the node at the new blob and drops the
// old blob's record; the old file is unlinked after the commit. An upload
// that fails, is aborted or is cut off by a crash leaves the previous version
// in place and at worst an orphan file, which the sweep removes. Concurrent
// uploads to one path each write their own blob; the last commit wins whole.
//
// # Changes
//
// File changes go to the account's change log with Collection ==
// FilesCollection and Object == the node id (8 bytes, big endian).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/text/unicode/norm"

	"kreide/crypto"
)

// fileBuckets are the buckets of the file tree (WebDAV).
var fileBuckets = [][]byte{bktFileNodes, bktFileChildren, bktFileProps, bktFileLocks}

var (
	bktFileNodes    = []byte("fnodes")
	bktFileChildren = []byte("fchildren")
	bktFileProps    = []byte("fprops")
	bktFileLocks    = []byte("flocks")
)

// Errors of the file tree. Protocol adapters map them: ErrFileNoParent to
// HTTP 409, ErrFileLocked to 423, ErrFileIsFolder to 405, ErrFileForbidden
// to 403, ErrFileNotFolder to 409, ErrFileNoLock to 412 on a refresh and 409
// on UNLOCK (and the shared ErrNotFound to 404,
// ErrExists to 405 or 412, ErrModified to 412, ErrOverQuota to 507,
// ErrInvalid to 400).
var (
	ErrFileNoParent  = errors.New("store: parent folder does not exist")
	ErrFileLocked    = errors.New("store: file or folder is locked")
	ErrFileIsFolder  = errors.New("store: is a folder")
	ErrFileNotFolder = errors.New("store: not a folder")
	ErrFileForbidden = errors.New("store: operation not allowed on this file or folder")
	ErrFileNoLock    = errors.New("store: no such lock on this file or folder")
)

// FilesCollection is the Change.Collection of file tree changes.
const FilesCollection uint32 = 0xFFFFFFFF

// Limits of the file tree.
const (
	MaxFileNameBytes = 255 // bytes of one name
	MaxFileDepth     = 64  // names in a path
)

const rootNodeID uint64 = 1

// Files is the file tree of an account: a.Files().
type Files struct{ a *Account }

// Files returns the account's file tree.
func (a *Account) Files() *Files { return &Files{a} }

// FileInfo describes a file or folder. Name is decrypted ("" for the root).
type FileInfo struct {
	ID          uint64
	Name        string
	Dir         bool
	Size        int64
	Created     time.Time
	Modified    time.Time
	ETag        string // strong entity tag, without quotes
	ContentType string // as given at upload; "" when unknown
}

// fileNode is a node of the tree, decrypted.
type fileNode struct {
	ID       uint64
	Parent   uint64
	Dir      bool
	LockNull bool // created by LOCK and never written: removed again on UNLOCK
	Created  time.Time
	Modified time.Time
	Size     int64
	Version  uint64 // modseq of the last content (or membership) change
	Blob     blobRef
	HasBlob  bool
	Key      []byte // content key wrapped under the blob key
	Name     string
	CType    string
}

const fileNodeVersion = 1

const (
	nodeFlagDir      = 1
	nodeFlagLockNull = 2
	nodeFlagBlob     = 4
)

func nodeKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

func fileContentAAD(account string, id [16]byte) []byte {
	return append([]byte("file-content|"+account+"|"), id[:]...)
}

func (n *fileNode) info() FileInfo {
	return FileInfo{ID: n.ID, Name: n.Name, Dir: n.Dir, Size: n.Size, Created: n.Created, Modified: n.Modified,
		ETag: string(appendETag(make([]byte, 0, 24), n.ID, n.Version)), ContentType: n.CType}
}

func (a *Account) marshalNode(n *fileNode) []byte {
	secret := binary.AppendUvarint(nil, uint64(len(n.Name)))
	secret = append(secret, n.Name...)
	secret = append(secret, n.CType...)
	sealed := a.rec.Seal("fnodes", nodeKey(n.ID), secret)

	var flags byte
	if n.Dir {
		flags |= nodeFlagDir
	}
	if n.LockNull {
		flags |= nodeFlagLockNull
	}
	if n.HasBlob {
		flags |= nodeFlagBlob
	}
	b := make([]byte, 0, 96+len(n.Key)+len(sealed))
	b = append(b, fileNodeVersion, flags)
	b = binary.AppendUvarint(b, n.Parent)
	b = binary.AppendVarint(b, n.Created.UnixNano())
	b = binary.AppendVarint(b, n.Modified.UnixNano())
	b = binary.AppendUvarint(b, uint64(n.Size))
	b = binary.AppendUvarint(b, n.Version)
	if n.HasBlob {
		b = append(b, n.Blob.ID[:]...)
		if n.Blob.Inline {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
		b = binary.AppendUvarint(b, uint64(n.Blob.EncSize))
		b = binary.AppendUvarint(b, uint64(len(n.Key)))
		b = append(b, n.Key...)
	}
	b = binary.AppendUvarint(b, uint64(len(sealed)))
	return append(b, sealed...)
}

func (a *Account) unmarshalNode(id uint64, v []byte) (*fileNode, error) {
	d := decoder{b: v}
	if d.byte() != fileNodeVersion {
		return nil, errBadRecord
	}
	flags := d.byte()
	n := &fileNode{ID: id, Dir: flags&nodeFlagDir != 0, LockNull: flags&nodeFlagLockNull != 0, HasBlob: flags&nodeFlagBlob != 0}
	n.Parent = d.uvarint()
	n.Created = time.Unix(0, d.varint())
	n.Modified = time.Unix(0, d.varint())
	n.Size = int64(d.uvarint())
	n.Version = d.uvarint()
	if n.HasBlob {
		copy(n.Blob.ID[:], d.bytes(16))
		n.Blob.Inline = d.byte() == 1
		n.Blob.EncSize = int64(d.uvarint())
		n.Key = append([]byte(nil), d.bytes(int(d.uvarint()))...)
	}
	sealed := d.bytes(int(d.uvarint()))
	if d.err {
		return nil, errBadRecord
	}
	secret, err := a.rec.Open("fnodes", nodeKey(id), sealed)
	if err != nil {
		return nil, fmt.Errorf("file node %d: %w", id, err)
	}
	sd := decoder{b: secret}
	n.Name = string(sd.bytes(int(sd.uvarint())))
	if sd.err {
		return nil, errBadRecord
	}
	n.CType = string(sd.b)
	return n, nil
}

// createDefaultFiles gives a new account its (empty) file tree: the root.
func (a *Account) createDefaultFiles(tx *bolt.Tx) error {
	b := tx.Bucket(bktFileNodes)
	if b.Get(nodeKey(rootNodeID)) != nil {
		return nil
	}
	if _, err := b.NextSequence(); err != nil { // id 1 is the root's
		return err
	}
	now := time.Now()
	return b.Put(nodeKey(rootNodeID), a.marshalNode(&fileNode{ID: rootNodeID, Dir: true, Created: now, Modified: now, Version: 1}))
}

// newNodeID allocates a node id. Accounts made before the file tree existed
// have no root record, so the counter may still hand out 1: skip it.
func newNodeID(tx *bolt.Tx) (uint64, error) {
	b := tx.Bucket(bktFileNodes)
	for {
		n, err := b.NextSequence()
		if err != nil || n != rootNodeID {
			return n, err
		}
	}
}

func (a *Account) loadNode(tx *bolt.Tx, id uint64) (*fileNode, error) {
	v := tx.Bucket(bktFileNodes).Get(nodeKey(id))
	if v == nil {
		if id == rootNodeID { // an account from before the file tree
			return &fileNode{ID: rootNodeID, Dir: true, Version: 1}, nil
		}
		return nil, ErrNotFound
	}
	return a.unmarshalNode(id, v)
}

func (a *Account) putNode(tx *bolt.Tx, n *fileNode) error {
	return tx.Bucket(bktFileNodes).Put(nodeKey(n.ID), a.marshalNode(n))
}

// childKey is the name index key of name in folder parent. Names are
// compared in Unicode normalization form C and kept as first written, as
// APFS does: macOS may send "Ü" decomposed (U+0055 U+0308) where Windows
// wrote it composed (U+00DC), and both must find the same file.
func (a *Account) childKey(parent uint64, name string) []byte {
	k := nodeKey(parent)
	return append(k, crypto.Blind(a.keys.Index, "file-name", append(nodeKey(parent), norm.NFC.String(name)...))...)
}

func (a *Account) lookupChild(tx *bolt.Tx, parent uint64, name string) (*fileNode, error) {
	v := tx.Bucket(bktFileChildren).Get(a.childKey(parent, name))
	if len(v) != 8 {
		return nil, ErrNotFound
	}
	return a.loadNode(tx, binary.BigEndian.Uint64(v))
}

// children lists the nodes of folder id, unsorted.
func (a *Account) children(tx *bolt.Tx, id uint64) ([]*fileNode, error) {
	var out []*fileNode
	prefix := nodeKey(id)
	c := tx.Bucket(bktFileChildren).Cursor()
	for k, v := c.Seek(prefix); len(k) > 8 && string(k[:8]) == string(prefix); k, v = c.Next() {
		if len(v) != 8 {
			return nil, errBadRecord
		}
		n, err := a.loadNode(tx, binary.BigEndian.Uint64(v))
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// linkChild enters n under its parent's name index; unlinkChild removes it.
func (a *Account) linkChild(tx *bolt.Tx, n *fileNode) error {
	return tx.Bucket(bktFileChildren).Put(a.childKey(n.Parent, n.Name), nodeKey(n.ID))
}

func (a *Account) unlinkChild(tx *bolt.Tx, n *fileNode) error {
	return tx.Bucket(bktFileChildren).Delete(a.childKey(n.Parent, n.Name))
}

// filePath is a validated path: its names from the root down.
type filePath []string

// parseFilePath validates a slash-separated path relative to the account's
// tree root. Empty segments (leading, trailing, doubled slashes) are
// ignored; every name must pass validFileName and there may be at most
// MaxFileDepth of them. Nothing can name a place outside the tree: names are
// keys of the tree, never file system paths, and "." and ".." are refused.
func parseFilePath(p string) (filePath, error) {
	if len(p) > (MaxFileNameBytes+1)*MaxFileDepth+1 {
		return nil, fmt.Errorf("%w: path too long", ErrInvalid)
	}
	var out filePath
	for name := range strings.SplitSeq(p, "/") {
		if name == "" {
			continue
		}
		if err := validFileName(name); err != nil {
			return nil, err
		}
		out = append(out, name)
		if len(out) > MaxFileDepth {
			return nil, fmt.Errorf("%w: path deeper than %d", ErrInvalid, MaxFileDepth)
		}
	}
	return out, nil
}

// validFileName refuses names that are empty, longer than 255 bytes, not
// UTF-8, contain a slash, NUL or another control character, or are "." or
// ".." (also when percent-encoded, perhaps repeatedly: a client that decodes
// twice must not be led out of a folder).
func validFileName(name string) error {
	bad := func(why string) error { return fmt.Errorf("%w: file name %s", ErrInvalid, why) }
	if name == "" || len(name) > MaxFileNameBytes {
		return bad("empty or longer than 255 bytes")
	}
	if !utf8.ValidString(name) {
		return bad("not UTF-8")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '/' || (r >= 0x80 && r < 0xa0) {
			return bad("contains a control character or slash")
		}
	}
	d := name
	for range 4 {
		if d == "." || d == ".." {
			return bad("is a dot segment")
		}
		u, err := url.PathUnescape(d)
		if err != nil || u == d {
			break
		}
		if strings.ContainsAny(u, "/\x00") {
			return bad("contains an encoded slash or NUL")
		}
		d = u
	}
	if d == "." || d == ".." {
		return bad("is a dot segment")
	}
	return nil
}

// walk resolves p from the root. It returns the chain of nodes from the root
// to the target (len(p)+1 nodes) or, with ErrNotFound, the chain as far as
// it exists. A file in the middle of a path gives ErrFileNoParent.
func (a *Account) walk(tx *bolt.Tx, p filePath) ([]*fileNode, error) {
	root, err := a.loadNode(tx, rootNodeID)
	if err != nil {
		return nil, err
	}
	chain := []*fileNode{root}
	for i, name := range p {
		cur := chain[len(chain)-1]
		if !cur.Dir {
			return chain, fmt.Errorf("%w: %q is a file", ErrFileNoParent, strings.Join(p[:i], "/"))
		}
		n, err := a.lookupChild(tx, cur.ID, name)
		if err != nil {
			return chain, err
		}
		chain = append(chain, n)
	}
	return chain, nil
}

// walkParent resolves the parent folder of p (which must not be the root)
// and, if it exists, p itself (nil otherwise).
func (a *Account) walkParent(tx *bolt.Tx, p filePath) (parents []*fileNode, target *fileNode, err error) {
	if len(p) == 0 {
		return nil, nil, fmt.Errorf("%w: the root", ErrFileForbidden)
	}
	chain, err := a.walk(tx, p)
	switch {
	case err == nil:
		return chain[:len(chain)-1], chain[len(chain)-1], nil
	case errors.Is(err, ErrNotFound) && len(chain) == len(p):
		if !chain[len(chain)-1].Dir {
			return nil, nil, fmt.Errorf("%w: parent is a file", ErrFileNoParent)
		}
		return chain, nil, nil
	case errors.Is(err, ErrNotFound):
		return nil, nil, fmt.Errorf("%w: %s", ErrFileNoParent, strings.Join(p[:len(chain)], "/"))
	}
	return nil, nil, err
}

// touchDir records a change of a folder's membership: new mtime and version.
func (a *Account) touchDir(tx *bolt.Tx, dir *fileNode, modseq uint64, now time.Time) error {
	dir.Modified, dir.Version = now, modseq
	return a.putNode(tx, dir)
}

func fileChange(tx *bolt.Tx, modseq uint64, kind ChangeKind, id uint64) error {
	return appendChange(tx, Change{ModSeq: modseq, Kind: kind, Collection: FilesCollection, Object: nodeKey(id)})
}

// unwrapFileKey unwraps a file's content key.
func (a *Account) unwrapFileKey(n *fileNode) (crypto.Key, error) {
	raw, err := crypto.UnwrapKey(a.keys.Blob, n.Key, fileContentAAD(a.id, n.Blob.ID))
	if err != nil {
		return crypto.Key{}, fmt.Errorf("file content key: %w", err)
	}
	return crypto.KeyFromBytes(raw)
}
