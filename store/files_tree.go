package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/text/unicode/norm"

	"kreide/crypto"
)

// Stat describes the file or folder at p ("" or "/" is the root).
func (f *Files) Stat(ctx context.Context, p string) (FileInfo, error) {
	a := f.a
	fp, err := parseFilePath(p)
	if err != nil {
		return FileInfo{}, err
	}
	var fi FileInfo
	err = a.view(func(tx *bolt.Tx) error {
		chain, err := a.walk(tx, fp)
		if err != nil {
			return err
		}
		fi = chain[len(chain)-1].info()
		return nil
	})
	return fi, err
}

// ReadDir lists the folder at p, sorted by name.
func (f *Files) ReadDir(ctx context.Context, p string) ([]FileInfo, error) {
	a := f.a
	fp, err := parseFilePath(p)
	if err != nil {
		return nil, err
	}
	var out []FileInfo
	err = a.view(func(tx *bolt.Tx) error {
		chain, err := a.walk(tx, fp)
		if err != nil {
			return err
		}
		dir := chain[len(chain)-1]
		if !dir.Dir {
			return ErrFileNotFolder
		}
		kids, err := a.listMembers(ctx, tx, dir.ID)
		if err != nil {
			return err
		}
		out = make([]FileInfo, len(kids)-1)
		for i := range out {
			out[i] = kids[1+i].FileInfo
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Mkdir creates a folder at p; its parent must exist. tokens are the lock
// tokens the client submitted.
func (f *Files) Mkdir(ctx context.Context, p string, tokens []string) (FileInfo, error) {
	a := f.a
	fp, err := parseFilePath(p)
	if err != nil {
		return FileInfo{}, err
	}
	var fi FileInfo
	err = a.update(func(tx *bolt.Tx) error {
		now := time.Now()
		parents, target, err := a.walkParent(tx, fp)
		if err != nil {
			return err
		}
		if target != nil {
			return ErrExists
		}
		if err := a.mayChange(tx, parents, tokens, now); err != nil {
			return err
		}
		id, err := newNodeID(tx)
		if err != nil {
			return err
		}
		modseq := nextModSeq(tx)
		parent := parents[len(parents)-1]
		n := &fileNode{ID: id, Parent: parent.ID, Dir: true, Created: now, Modified: now, Version: modseq, Name: fp[len(fp)-1]}
		if err := a.putNode(tx, n); err != nil {
			return err
		}
		if err := a.linkChild(tx, n); err != nil {
			return err
		}
		if err := a.touchDir(tx, parent, modseq, now); err != nil {
			return err
		}
		fi = n.info()
		return fileChange(tx, modseq, ChangeCollectionPut, id)
	})
	return fi, err
}

// subtree returns n and everything below it, parents before children, and
// the height of the tree (0 for a file or an empty folder).
func (a *Account) subtree(tx *bolt.Tx, n *fileNode) ([]*fileNode, error) {
	nodes, _, err := a.subtreeHeight(tx, n, false)
	return nodes, err
}

func (a *Account) subtreeHeight(tx *bolt.Tx, n *fileNode, shallow bool) ([]*fileNode, int, error) {
	nodes := []*fileNode{n}
	depth := []int{0}
	height := 0
	for i := 0; i < len(nodes); i++ {
		if !nodes[i].Dir || shallow {
			continue
		}
		kids, err := a.children(tx, nodes[i].ID)
		if err != nil {
			return nil, 0, err
		}
		for _, k := range kids {
			nodes = append(nodes, k)
			depth = append(depth, depth[i]+1)
			height = max(height, depth[i]+1)
		}
	}
	return nodes, height, nil
}

func changeKindPut(n *fileNode) ChangeKind {
	if n.Dir {
		return ChangeCollectionPut
	}
	return ChangeObjectPut
}

func changeKindDelete(n *fileNode) ChangeKind {
	if n.Dir {
		return ChangeCollectionDelete
	}
	return ChangeObjectDeleted
}

// removeTx deletes the tree at the end of chain without checking locks. It
// returns the blobs to unlink once the transaction has committed.
func (a *Account) removeTx(tx *bolt.Tx, chain []*fileNode, now time.Time) ([]blobRef, error) {
	target := chain[len(chain)-1]
	nodes, err := a.subtree(tx, target)
	if err != nil {
		return nil, err
	}
	var refs []blobRef
	var size int64
	for _, n := range nodes {
		if err := a.unlinkChild(tx, n); err != nil {
			return nil, err
		}
		if err := tx.Bucket(bktFileNodes).Delete(nodeKey(n.ID)); err != nil {
			return nil, err
		}
		if err := tx.Bucket(bktFileProps).Delete(nodeKey(n.ID)); err != nil {
			return nil, err
		}
		if n.HasBlob {
			if err := deleteBlob(tx, n.Blob); err != nil {
				return nil, err
			}
			refs = append(refs, n.Blob)
			size += n.Size
		}
		if err := fileChange(tx, nextModSeq(tx), changeKindDelete(n), n.ID); err != nil {
			return nil, err
		}
	}
	if err := a.dropLocks(tx, nodes); err != nil {
		return nil, err
	}
	if err := a.h.charge(tx, -size); err != nil {
		return nil, err
	}
	return refs, a.touchDir(tx, chain[len(chain)-2], currentModSeq(tx), now)
}

// Remove deletes the file or folder (with everything in it) at p.
func (f *Files) Remove(ctx context.Context, p string, tokens []string) error {
	a := f.a
	fp, err := parseFilePath(p)
	if err != nil {
		return err
	}
	if len(fp) == 0 {
		return fmt.Errorf("%w: the root", ErrFileForbidden)
	}
	var refs []blobRef
	err = a.update(func(tx *bolt.Tx) error {
		now := time.Now()
		chain, err := a.walk(tx, fp)
		if err != nil {
			return err
		}
		nodes, err := a.subtree(tx, chain[len(chain)-1])
		if err != nil {
			return err
		}
		if err := a.mayRemove(tx, chain, nodes, tokens, now); err != nil {
			return err
		}
		refs, err = a.removeTx(tx, chain, now)
		return err
	})
	if err == nil {
		a.h.unlinkBlobs(refs)
	}
	return err
}

// FileCopyOptions control Copy and Move.
type FileCopyOptions struct {
	Overwrite bool     // replace what is at the destination (else ErrExists)
	Shallow   bool     // Copy only: a folder without its members (Depth: 0)
	Tokens    []string // lock tokens the client submitted
}

// isWithin reports whether p is q or below q (names compared as lookups
// compare them, in normalization form C).
func isWithin(p, q filePath) bool {
	return len(p) >= len(q) && slices.EqualFunc(p[:len(q)], q, func(x, y string) bool { return norm.NFC.String(x) == norm.NFC.String(y) })
}

// checkCopyPaths refuses copies and moves of or onto the root, onto
// themselves, into themselves, or over one of their ancestors.
func checkCopyPaths(src, dst filePath, overwrite bool) error {
	switch {
	case len(src) == 0 || len(dst) == 0:
		return fmt.Errorf("%w: the root", ErrFileForbidden)
	case isWithin(dst, src):
		return fmt.Errorf("%w: destination inside the source", ErrFileForbidden)
	case isWithin(src, dst) && !overwrite:
		return ErrExists
	case isWithin(src, dst):
		return fmt.Errorf("%w: destination contains the source", ErrFileForbidden)
	}
	return nil
}

// prepareDest resolves the destination of a copy or move and, with
// overwrite, removes what is there. It returns the parent chain and the
// blobs to unlink after commit; created says nothing was there.
func (a *Account) prepareDest(tx *bolt.Tx, dst filePath, o FileCopyOptions, now time.Time) (parents []*fileNode, refs []blobRef, created bool, err error) {
	parents, target, err := a.walkParent(tx, dst)
	if err != nil {
		return nil, nil, false, err
	}
	if target == nil {
		return parents, nil, true, a.mayChange(tx, parents, o.Tokens, now)
	}
	if !o.Overwrite {
		return nil, nil, false, ErrExists
	}
	chain := append(slices.Clone(parents), target)
	nodes, err := a.subtree(tx, target)
	if err != nil {
		return nil, nil, false, err
	}
	if err := a.mayRemove(tx, chain, nodes, o.Tokens, now); err != nil {
		return nil, nil, false, err
	}
	refs, err = a.removeTx(tx, chain, now)
	return parents, refs, false, err
}

// Copy copies src to dst (RFC 4918 section 9.8): a folder with everything in
// it unless o.Shallow, with dead properties, without locks. File content is
// hard-linked, not rewritten. created is false when dst was replaced.
func (f *Files) Copy(ctx context.Context, src, dst string, o FileCopyOptions) (created bool, err error) {
	a := f.a
	fsrc, err := parseFilePath(src)
	if err != nil {
		return false, err
	}
	fdst, err := parseFilePath(dst)
	if err != nil {
		return false, err
	}
	if err := checkCopyPaths(fsrc, fdst, o.Overwrite); err != nil {
		return false, err
	}
	var removed, made []blobRef
	err = a.update(func(tx *bolt.Tx) error {
		removed, made = nil, nil
		now := time.Now()
		chain, err := a.walk(tx, fsrc)
		if err != nil {
			return err
		}
		nodes, height, err := a.subtreeHeight(tx, chain[len(chain)-1], o.Shallow)
		if err != nil {
			return err
		}
		if len(fdst)+height > MaxFileDepth {
			return fmt.Errorf("%w: copy deeper than %d", ErrInvalid, MaxFileDepth)
		}
		parents, refs, c, err := a.prepareDest(tx, fdst, o, now)
		removed, created = refs, c
		if err != nil {
			return err
		}
		parent := parents[len(parents)-1]
		ids := map[uint64]uint64{nodes[0].Parent: parent.ID}
		var size int64
		for i, n := range nodes {
			if err := ctx.Err(); err != nil {
				return err
			}
			id, err := newNodeID(tx)
			if err != nil {
				return err
			}
			ids[n.ID] = id
			modseq := nextModSeq(tx)
			c := &fileNode{ID: id, Parent: ids[n.Parent], Dir: n.Dir, Created: now, Modified: now, Version: modseq,
				Size: n.Size, Name: n.Name, CType: n.CType}
			if i == 0 {
				c.Name = fdst[len(fdst)-1]
			}
			if n.HasBlob {
				if c.Blob, c.Key, err = a.copyFileBlob(tx, n); err != nil {
					return err
				}
				c.HasBlob = true
				made = append(made, c.Blob)
				size += n.Size
			}
			if err := a.putNode(tx, c); err != nil {
				return err
			}
			if err := a.linkChild(tx, c); err != nil {
				return err
			}
			if err := a.copyProps(tx, n.ID, id); err != nil {
				return err
			}
			if err := fileChange(tx, modseq, changeKindPut(c), id); err != nil {
				return err
			}
		}
		if err := a.h.charge(tx, size); err != nil {
			return err
		}
		return a.touchDir(tx, parent, currentModSeq(tx), now)
	})
	if err != nil {
		a.h.unlinkBlobs(made)
		return false, err
	}
	a.h.unlinkBlobs(removed)
	return created, nil
}

// copyFileBlob links a file's content under a new blob id and wraps its
// content key for that id.
func (a *Account) copyFileBlob(tx *bolt.Tx, n *fileNode) (blobRef, []byte, error) {
	key, err := a.unwrapFileKey(n)
	if err != nil {
		return blobRef{}, nil, err
	}
	ref, inline, err := a.h.copyBlob(tx, n.Blob)
	if err != nil {
		return blobRef{}, nil, err
	}
	if err := putBlob(tx, ref, inline); err != nil {
		return ref, nil, err
	}
	return ref, crypto.WrapKey(a.keys.Blob, key[:], fileContentAAD(a.id, ref.ID)), nil
}

// Move moves src to dst (RFC 4918 section 9.9). Content and dead properties
// stay as they are; locks rooted in the moved tree are dropped (a lock never
// moves with its resource), locks covering dst apply from now on.
func (f *Files) Move(ctx context.Context, src, dst string, o FileCopyOptions) (created bool, err error) {
	a := f.a
	fsrc, err := parseFilePath(src)
	if err != nil {
		return false, err
	}
	fdst, err := parseFilePath(dst)
	if err != nil {
		return false, err
	}
	if err := checkCopyPaths(fsrc, fdst, o.Overwrite); err != nil {
		return false, err
	}
	var removed []blobRef
	err = a.update(func(tx *bolt.Tx) error {
		removed = nil
		now := time.Now()
		chain, err := a.walk(tx, fsrc)
		if err != nil {
			return err
		}
		n := chain[len(chain)-1]
		nodes, height, err := a.subtreeHeight(tx, n, false)
		if err != nil {
			return err
		}
		if len(fdst)+height > MaxFileDepth {
			return fmt.Errorf("%w: move deeper than %d", ErrInvalid, MaxFileDepth)
		}
		if err := a.mayRemove(tx, chain, nodes, o.Tokens, now); err != nil {
			return err
		}
		parents, refs, c, err := a.prepareDest(tx, fdst, o, now)
		removed, created = refs, c
		if err != nil {
			return err
		}
		if err := a.unlinkChild(tx, n); err != nil {
			return err
		}
		modseq := nextModSeq(tx)
		newParent := parents[len(parents)-1]
		n.Parent, n.Name, n.LockNull = newParent.ID, fdst[len(fdst)-1], false
		if err := a.putNode(tx, n); err != nil {
			return err
		}
		if err := a.linkChild(tx, n); err != nil {
			return err
		}
		if err := a.dropLocks(tx, nodes); err != nil {
			return err
		}
		if err := a.touchDir(tx, chain[len(chain)-2], modseq, now); err != nil {
			return err
		}
		if err := a.touchDir(tx, newParent, modseq, now); err != nil {
			return err
		}
		return fileChange(tx, modseq, changeKindPut(n), n.ID)
	})
	if err != nil {
		return false, err
	}
	a.h.unlinkBlobs(removed)
	return created, nil
}
