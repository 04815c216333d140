package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// WebDAV write locks (RFC 4918 sections 6 and 7) on the file tree. A lock
// belongs to its token, not to a session: whoever submits the token may
// change what it covers. Locks are stored, so they survive restarts; expired
// ones are ignored and removed by the next write that meets them.

// FileLockScope is exclusive or shared.
type FileLockScope uint8

// Lock scopes. The numbers are stored: never reuse one.
const (
	FileLockExclusive FileLockScope = 1
	FileLockShared    FileLockScope = 2
)

// FileLock is an active lock.
type FileLock struct {
	Token    string // "opaquelocktoken:<uuid>"
	Root     string // path of the locked resource, "/"-separated, no leading slash
	RootDir  bool   // the locked resource is a folder
	Scope    FileLockScope
	Infinite bool   // depth infinity (else 0)
	Owner    []byte // the client's DAV:owner XML, as given
	Timeout  time.Duration
	Expires  time.Time
}

// FileLockRequest asks for a new lock.
type FileLockRequest struct {
	Scope    FileLockScope
	Infinite bool
	Owner    []byte
	Timeout  time.Duration
	Tokens   []string // lock tokens the client submitted (to create a resource in a locked folder)
}

// maxLocksPerNode bounds shared locks on one resource.
const maxLocksPerNode = 64

const fileLockVersion = 1

// fileLock is a stored lock with the node it is rooted at.
type fileLock struct {
	Node     uint64
	Token    string
	Scope    FileLockScope
	Infinite bool
	Timeout  time.Duration
	Expires  time.Time
	Owner    []byte
}

func lockKey(node uint64, token string) []byte { return append(nodeKey(node), token...) }

func (a *Account) marshalLock(l *fileLock) []byte {
	b := []byte{fileLockVersion, byte(l.Scope), 0}
	if l.Infinite {
		b[2] = 1
	}
	b = binary.AppendUvarint(b, uint64(l.Timeout/time.Second))
	b = binary.AppendVarint(b, l.Expires.UnixNano())
	sealed := a.rec.Seal("flocks", lockKey(l.Node, l.Token), l.Owner)
	b = binary.AppendUvarint(b, uint64(len(sealed)))
	return append(b, sealed...)
}

func (a *Account) unmarshalLock(k, v []byte) (*fileLock, error) {
	if len(k) <= 8 {
		return nil, errBadRecord
	}
	l := &fileLock{Node: binary.BigEndian.Uint64(k), Token: string(k[8:])}
	d := decoder{b: v}
	if d.byte() != fileLockVersion {
		return nil, errBadRecord
	}
	l.Scope = FileLockScope(d.byte())
	l.Infinite = d.byte() == 1
	l.Timeout = time.Duration(d.uvarint()) * time.Second
	l.Expires = time.Unix(0, d.varint())
	sealed := d.bytes(int(d.uvarint()))
	if d.err {
		return nil, errBadRecord
	}
	owner, err := a.rec.Open("flocks", k, sealed)
	if err != nil {
		return nil, fmt.Errorf("file lock: %w", err)
	}
	l.Owner = owner
	return l, nil
}

// nodeLocks returns the live locks rooted at node. In a write transaction it
// also deletes expired ones.
func (a *Account) nodeLocks(tx *bolt.Tx, node uint64, now time.Time) ([]*fileLock, error) {
	var out []*fileLock
	var expired [][]byte
	prefix := nodeKey(node)
	c := tx.Bucket(bktFileLocks).Cursor()
	for k, v := c.Seek(prefix); len(k) > 8 && string(k[:8]) == string(prefix); k, v = c.Next() {
		l, err := a.unmarshalLock(k, v)
		if err != nil {
			return nil, err
		}
		if !l.Expires.After(now) {
			expired = append(expired, append([]byte(nil), k...))
			continue
		}
		out = append(out, l)
	}
	if tx.Writable() {
		for _, k := range expired {
			if err := tx.Bucket(bktFileLocks).Delete(k); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// coveringLocks returns the locks that cover the last node of chain: those
// rooted at it and those of depth infinity rooted at an ancestor.
func (a *Account) coveringLocks(tx *bolt.Tx, chain []*fileNode, now time.Time) ([]*fileLock, error) {
	var out []*fileLock
	for i, n := range chain {
		ls, err := a.nodeLocks(tx, n.ID, now)
		if err != nil {
			return nil, err
		}
		for _, l := range ls {
			if i == len(chain)-1 || l.Infinite {
				out = append(out, l)
			}
		}
	}
	return out, nil
}

// mayChange fails with ErrFileLocked unless every lock covering the last
// node of chain was submitted (held). Changing a folder's membership is a
// change of the folder.
func (a *Account) mayChange(tx *bolt.Tx, chain []*fileNode, held []string, now time.Time) error {
	ls, err := a.coveringLocks(tx, chain, now)
	if err != nil {
		return err
	}
	for _, l := range ls {
		if !slices.Contains(held, l.Token) {
			return ErrFileLocked
		}
	}
	return nil
}

// mayRemove checks what removing the tree at the end of chain (nodes, as
// from subtree) changes: the parent's membership, the node and every lock
// inside the tree.
func (a *Account) mayRemove(tx *bolt.Tx, chain []*fileNode, nodes []*fileNode, held []string, now time.Time) error {
	if err := a.mayChange(tx, chain[:len(chain)-1], held, now); err != nil {
		return err
	}
	if err := a.mayChange(tx, chain, held, now); err != nil {
		return err
	}
	for _, n := range nodes[1:] {
		ls, err := a.nodeLocks(tx, n.ID, now)
		if err != nil {
			return err
		}
		for _, l := range ls {
			if !slices.Contains(held, l.Token) {
				return ErrFileLocked
			}
		}
	}
	return nil
}

// dropLocks deletes every lock rooted at one of nodes (a removed or moved tree).
func (a *Account) dropLocks(tx *bolt.Tx, nodes []*fileNode) error {
	b := tx.Bucket(bktFileLocks)
	for _, n := range nodes {
		var keys [][]byte
		prefix := nodeKey(n.ID)
		c := b.Cursor()
		for k, _ := c.Seek(prefix); len(k) > 8 && string(k[:8]) == string(prefix); k, _ = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
	}
	return nil
}

func newLockToken() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("opaquelocktoken:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}

func chainPath(chain []*fileNode, upto int) string {
	names := make([]string, 0, upto)
	for _, n := range chain[1 : upto+1] {
		names = append(names, n.Name)
	}
	return strings.Join(names, "/")
}

func (l *fileLock) public(root string, dir bool) FileLock {
	return FileLock{Token: l.Token, Root: root, RootDir: dir, Scope: l.Scope, Infinite: l.Infinite, Owner: l.Owner, Timeout: l.Timeout, Expires: l.Expires}
}

// publicLocks turns the locks covering chain's last node into FileLocks.
func publicLocks(chain []*fileNode, ls []*fileLock) []FileLock {
	out := make([]FileLock, 0, len(ls))
	for _, l := range ls {
		i := slices.IndexFunc(chain, func(n *fileNode) bool { return n.ID == l.Node })
		out = append(out, l.public(chainPath(chain, i), chain[i].Dir))
	}
	return out
}

// Lock takes a write lock on p. A lock on a path where nothing exists
// creates an empty file there (RFC 4918 section 7.3; created is true); it is
// removed again if it is unlocked before anything was written to it, as
// RFC 2518 lock-null resources were. A conflicting lock gives ErrFileLocked.
func (f *Files) Lock(ctx context.Context, p string, r FileLockRequest) (lock FileLock, created bool, err error) {
	a := f.a
	fp, err := parseFilePath(p)
	if err != nil {
		return FileLock{}, false, err
	}
	if r.Scope != FileLockExclusive && r.Scope != FileLockShared || r.Timeout < time.Second {
		return FileLock{}, false, fmt.Errorf("%w: lock request", ErrInvalid)
	}
	err = a.update(func(tx *bolt.Tx) error {
		created = false
		now := time.Now()
		chain, err := a.walk(tx, fp)
		if err != nil {
			if chain, err = a.createLockNull(tx, fp, r.Tokens, now); err != nil {
				return err
			}
			created = true
		}
		target := chain[len(chain)-1]
		existing, err := a.coveringLocks(tx, chain, now)
		if err != nil {
			return err
		}
		if target.Dir && r.Infinite {
			nodes, err := a.subtree(tx, target)
			if err != nil {
				return err
			}
			for _, n := range nodes[1:] {
				ls, err := a.nodeLocks(tx, n.ID, now)
				if err != nil {
					return err
				}
				existing = append(existing, ls...)
			}
		}
		own := 0
		for _, l := range existing {
			if l.Scope == FileLockExclusive || r.Scope == FileLockExclusive {
				return ErrFileLocked
			}
			if l.Node == target.ID {
				own++
			}
		}
		if own >= maxLocksPerNode {
			return ErrFileLocked
		}
		l := &fileLock{Node: target.ID, Token: newLockToken(), Scope: r.Scope, Infinite: r.Infinite,
			Timeout: r.Timeout.Truncate(time.Second), Expires: now.Add(r.Timeout), Owner: r.Owner}
		lock = l.public(chainPath(chain, len(chain)-1), target.Dir)
		return tx.Bucket(bktFileLocks).Put(lockKey(l.Node, l.Token), a.marshalLock(l))
	})
	return lock, created, err
}

// createLockNull makes the empty file a LOCK on an unmapped path creates.
func (a *Account) createLockNull(tx *bolt.Tx, fp filePath, held []string, now time.Time) ([]*fileNode, error) {
	parents, _, err := a.walkParent(tx, fp)
	if err != nil {
		return nil, err
	}
	if err := a.mayChange(tx, parents, held, now); err != nil {
		return nil, err
	}
	id, err := newNodeID(tx)
	if err != nil {
		return nil, err
	}
	ref, inline, wrapped, err := a.emptyBlob()
	if err != nil {
		return nil, err
	}
	modseq := nextModSeq(tx)
	parent := parents[len(parents)-1]
	n := &fileNode{ID: id, Parent: parent.ID, LockNull: true, Created: now, Modified: now, Version: modseq,
		Name: fp[len(fp)-1], Blob: ref, HasBlob: true, Key: wrapped}
	if err := a.putNode(tx, n); err != nil {
		return nil, err
	}
	if err := putBlob(tx, ref, inline); err != nil {
		return nil, err
	}
	if err := a.linkChild(tx, n); err != nil {
		return nil, err
	}
	if err := a.touchDir(tx, parent, modseq, now); err != nil {
		return nil, err
	}
	if err := fileChange(tx, modseq, ChangeObjectPut, id); err != nil {
		return nil, err
	}
	return append(parents, n), nil
}

// findLock returns the lock among those covering p whose token is one of tokens.
func (a *Account) findLock(tx *bolt.Tx, fp filePath, tokens []string, now time.Time) ([]*fileNode, *fileLock, error) {
	chain, err := a.walk(tx, fp)
	if err != nil {
		return nil, nil, err
	}
	ls, err := a.coveringLocks(tx, chain, now)
	if err != nil {
		return nil, nil, err
	}
	for _, l := range ls {
		if slices.Contains(tokens, l.Token) {
			return chain, l, nil
		}
	}
	return chain, nil, ErrFileNoLock
}

// Refresh restarts the timeout of the lock covering p whose token is one of
// tokens (RFC 4918 section 9.10.2). None: ErrFileNoLock.
func (f *Files) Refresh(ctx context.Context, p string, tokens []string, timeout time.Duration) (FileLock, error) {
	a := f.a
	fp, err := parseFilePath(p)
	if err != nil {
		return FileLock{}, err
	}
	var lock FileLock
	err = a.update(func(tx *bolt.Tx) error {
		now := time.Now()
		chain, l, err := a.findLock(tx, fp, tokens, now)
		if err != nil {
			return err
		}
		if timeout >= time.Second {
			l.Timeout = timeout.Truncate(time.Second)
		}
		l.Expires = now.Add(l.Timeout)
		lock = publicLocks(chain, []*fileLock{l})[0]
		return tx.Bucket(bktFileLocks).Put(lockKey(l.Node, l.Token), a.marshalLock(l))
	})
	return lock, err
}

// Unlock removes the lock token, which must cover p (RFC 4918 section 9.11).
// An empty file that LOCK created and nobody wrote goes with its last lock.
func (f *Files) Unlock(ctx context.Context, p, token string) error {
	a := f.a
	fp, err := parseFilePath(p)
	if err != nil {
		return err
	}
	return a.update(func(tx *bolt.Tx) error {
		now := time.Now()
		chain, l, err := a.findLock(tx, fp, []string{token}, now)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bktFileLocks).Delete(lockKey(l.Node, l.Token)); err != nil {
			return err
		}
		i := slices.IndexFunc(chain, func(n *fileNode) bool { return n.ID == l.Node })
		root := chain[i]
		if !root.LockNull {
			return nil
		}
		if rest, err := a.nodeLocks(tx, root.ID, now); err != nil || len(rest) > 0 {
			return err
		}
		_, err = a.removeTx(tx, chain[:i+1], now)
		return err
	})
}

// Locks returns the active locks that cover p.
func (f *Files) Locks(ctx context.Context, p string) ([]FileLock, error) {
	a := f.a
	fp, err := parseFilePath(p)
	if err != nil {
		return nil, err
	}
	var out []FileLock
	err = a.view(func(tx *bolt.Tx) error {
		chain, err := a.walk(tx, fp)
		if err != nil {
			return err
		}
		ls, err := a.coveringLocks(tx, chain, time.Now())
		if err != nil {
			return err
		}
		out = publicLocks(chain, ls)
		return nil
	})
	return out, err
}
