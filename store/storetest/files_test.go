package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"kreide/store"
)

func putFile(t testing.TB, fs *store.Files, p string, content []byte, tokens ...string) store.FileInfo {
	t.Helper()
	w, err := fs.Create(ctx, p, store.FileCreateOptions{ExpectedSize: int64(len(content)), Tokens: tokens})
	if err != nil {
		t.Fatalf("create %s: %v", p, err)
	}
	if _, err := w.Write(content); err != nil {
		w.Abort()
		t.Fatalf("write %s: %v", p, err)
	}
	fi, _, err := w.Commit(ctx)
	if err != nil {
		t.Fatalf("commit %s: %v", p, err)
	}
	return fi
}

func readFile(t testing.TB, fs *store.Files, p string) []byte {
	t.Helper()
	r, _, err := fs.Open(ctx, p)
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return b
}

func names(t testing.TB, fs *store.Files, p string) string {
	t.Helper()
	list, err := fs.ReadDir(ctx, p)
	if err != nil {
		t.Fatalf("readdir %s: %v", p, err)
	}
	var out []string
	for _, fi := range list {
		n := fi.Name
		if fi.Dir {
			n += "/"
		}
		out = append(out, n)
	}
	return strings.Join(out, " ")
}

func mustErr(t testing.TB, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

func TestFilesTree(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "files@example.org", "password1")
	fs := a.Files()

	root, err := fs.Stat(ctx, "/")
	if err != nil || !root.Dir {
		t.Fatalf("root: %+v %v", root, err)
	}
	if _, err := fs.Mkdir(ctx, "Klasse 5b", nil); err != nil {
		t.Fatal(err)
	}
	_, err = fs.Mkdir(ctx, "Klasse 5b", nil)
	mustErr(t, err, store.ErrExists, "mkdir again")
	_, err = fs.Mkdir(ctx, "nope/sub", nil)
	mustErr(t, err, store.ErrFileNoParent, "mkdir without parent")
	big := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320 KB: a blob file
	putFile(t, fs, "/Klasse 5b/Notizen.txt", []byte("Elternabend"))
	putFile(t, fs, "/Klasse 5b/big.bin", big)
	_, err = fs.Mkdir(ctx, "Klasse 5b/Notizen.txt/x", nil)
	mustErr(t, err, store.ErrFileNoParent, "mkdir under a file")
	_, err = fs.Mkdir(ctx, "Klasse 5b/Notizen.txt", nil)
	mustErr(t, err, store.ErrExists, "mkdir over a file")
	_, err = fs.Create(ctx, "Klasse 5b", store.FileCreateOptions{})
	mustErr(t, err, store.ErrFileIsFolder, "write a folder")
	_, err = fs.Create(ctx, "missing/x.txt", store.FileCreateOptions{})
	mustErr(t, err, store.ErrFileNoParent, "write without parent")
	_, _, err = fs.Open(ctx, "Klasse 5b")
	mustErr(t, err, store.ErrFileIsFolder, "open a folder")
	_, err = fs.Stat(ctx, "Klasse 5b/none")
	mustErr(t, err, store.ErrNotFound, "stat missing")

	if got := names(t, fs, ""); got != "Klasse 5b/" {
		t.Fatalf("root lists %q", got)
	}
	if got := names(t, fs, "Klasse 5b"); got != "Notizen.txt big.bin" {
		t.Fatalf("folder lists %q", got)
	}
	if got := readFile(t, fs, "Klasse 5b/big.bin"); !bytes.Equal(got, big) {
		t.Fatal("big file differs")
	}
	fi, _ := fs.Stat(ctx, "Klasse 5b/big.bin")
	if fi.Size != int64(len(big)) || fi.Dir || fi.ETag == "" {
		t.Fatalf("stat: %+v", fi)
	}

	// Overwrite: a new ETag, same node.
	fi2 := putFile(t, fs, "Klasse 5b/Notizen.txt", []byte("Elternabend am Montag"))
	fi1, _ := fs.Stat(ctx, "Klasse 5b/Notizen.txt")
	if fi1.ETag != fi2.ETag || fi2.Size != 21 {
		t.Fatalf("after overwrite: %+v %+v", fi1, fi2)
	}

	// Seekable reads.
	r, _, err := fs.Open(ctx, "Klasse 5b/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := r.ReadAt(buf, 100_003); err != nil || !bytes.Equal(buf, big[100_003:100_013]) {
		t.Fatalf("ReadAt: %q %v", buf, err)
	}
	r.Close()

	// Properties go with copies and moves.
	err = fs.SetProps(ctx, "Klasse 5b", []store.FilePropPatch{
		{FilePropName: store.FilePropName{Space: "urn:schemas-microsoft-com:", Local: "Win32FileAttributes"}, Value: []byte("00000010")},
		{FilePropName: store.FilePropName{Space: "urn:x", Local: "gone"}, Value: []byte("1")},
		{FilePropName: store.FilePropName{Space: "urn:x", Local: "gone"}, Remove: true},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Copy a tree.
	created, err := fs.Copy(ctx, "Klasse 5b", "Kopie", store.FileCopyOptions{})
	if err != nil || !created {
		t.Fatalf("copy: %v %v", created, err)
	}
	if got := names(t, fs, "Kopie"); got != "Notizen.txt big.bin" {
		t.Fatalf("copy lists %q", got)
	}
	if !bytes.Equal(readFile(t, fs, "Kopie/big.bin"), big) {
		t.Fatal("copied content differs")
	}
	ps, err := fs.Props(ctx, "Kopie")
	if err != nil || len(ps) != 1 || string(ps[0].Value) != "00000010" {
		t.Fatalf("copied props: %+v %v", ps, err)
	}
	_, err = fs.Copy(ctx, "Klasse 5b", "Kopie", store.FileCopyOptions{})
	mustErr(t, err, store.ErrExists, "copy without overwrite")
	_, err = fs.Copy(ctx, "Klasse 5b", "Klasse 5b/inner", store.FileCopyOptions{})
	mustErr(t, err, store.ErrFileForbidden, "copy into itself")
	_, err = fs.Copy(ctx, "Klasse 5b/big.bin", "nope/big.bin", store.FileCopyOptions{})
	mustErr(t, err, store.ErrFileNoParent, "copy without parent")
	// Shallow copy of a folder.
	if _, err := fs.Copy(ctx, "Klasse 5b", "Leer", store.FileCopyOptions{Shallow: true}); err != nil {
		t.Fatal(err)
	}
	if got := names(t, fs, "Leer"); got != "" {
		t.Fatalf("shallow copy lists %q", got)
	}
	// Copy a file over a folder, with overwrite.
	created, err = fs.Copy(ctx, "Klasse 5b/Notizen.txt", "Leer", store.FileCopyOptions{Overwrite: true})
	if err != nil || created {
		t.Fatalf("copy over folder: %v %v", created, err)
	}
	if got := string(readFile(t, fs, "Leer")); got != "Elternabend am Montag" {
		t.Fatalf("copy over folder: %q", got)
	}

	// Writing the copy does not change the original.
	putFile(t, fs, "Kopie/big.bin", []byte("small now"))
	if !bytes.Equal(readFile(t, fs, "Klasse 5b/big.bin"), big) {
		t.Fatal("original changed with its copy")
	}

	// Move (rename) and move over an existing file.
	if created, err := fs.Move(ctx, "Kopie", "Archiv", store.FileCopyOptions{}); err != nil || !created {
		t.Fatalf("move: %v %v", created, err)
	}
	if got := names(t, fs, ""); got != "Archiv/ Klasse 5b/ Leer" {
		t.Fatalf("after move: %q", got)
	}
	_, err = fs.Move(ctx, "Archiv/big.bin", "Archiv/Notizen.txt", store.FileCopyOptions{})
	mustErr(t, err, store.ErrExists, "move without overwrite")
	if created, err := fs.Move(ctx, "Archiv/big.bin", "Archiv/Notizen.txt", store.FileCopyOptions{Overwrite: true}); err != nil || created {
		t.Fatalf("move over: %v %v", created, err)
	}
	if got := string(readFile(t, fs, "Archiv/Notizen.txt")); got != "small now" {
		t.Fatalf("moved over: %q", got)
	}
	_, err = fs.Move(ctx, "Archiv", "Archiv/x", store.FileCopyOptions{})
	mustErr(t, err, store.ErrFileForbidden, "move into itself")
	_, err = fs.Move(ctx, "Archiv/Notizen.txt", "Archiv", store.FileCopyOptions{Overwrite: true})
	mustErr(t, err, store.ErrFileForbidden, "move over its parent")
	_, err = fs.Move(ctx, "", "x", store.FileCopyOptions{})
	mustErr(t, err, store.ErrFileForbidden, "move the root")
	mustErr(t, fs.Remove(ctx, "/", nil), store.ErrFileForbidden, "remove the root")

	// Remove a tree; usage returns to what is left.
	if err := fs.Remove(ctx, "Klasse 5b", nil); err != nil {
		t.Fatal(err)
	}
	mustErr(t, fs.Remove(ctx, "Klasse 5b", nil), store.ErrNotFound, "remove again")
	used, _, _ := a.Used(ctx)
	if want := int64(len("small now") + len("Elternabend am Montag")); used != want {
		t.Fatalf("used %d, want %d", used, want)
	}

	// The change log names files by node id only.
	chs, _, err := a.Changes(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, c := range chs {
		if c.Collection == store.FilesCollection {
			n++
			if len(c.Object) != 8 {
				t.Fatalf("change object %x", c.Object)
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d file changes logged", n)
	}
}

func TestFilesOverwriteAtomic(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "atomic@example.org", "password1")
	fs := a.Files()
	v1 := bytes.Repeat([]byte("version one "), 30000)
	putFile(t, fs, "doc.txt", v1)

	// An aborted upload leaves the old content.
	w, err := fs.Create(ctx, "doc.txt", store.FileCreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.Repeat([]byte("X"), 500_000))
	if got := readFile(t, fs, "doc.txt"); !bytes.Equal(got, v1) {
		t.Fatal("partial upload visible")
	}
	w.Abort()
	if got := readFile(t, fs, "doc.txt"); !bytes.Equal(got, v1) {
		t.Fatal("aborted upload changed the file")
	}
	// An upload of a new file that is aborted leaves nothing.
	w, _ = fs.Create(ctx, "new.txt", store.FileCreateOptions{})
	w.Write([]byte("never"))
	w.Abort()
	_, err = fs.Stat(ctx, "new.txt")
	mustErr(t, err, store.ErrNotFound, "aborted new file")

	// A reader keeps the version it opened.
	r, _, err := fs.Open(ctx, "doc.txt")
	if err != nil {
		t.Fatal(err)
	}
	putFile(t, fs, "doc.txt", []byte("version two"))
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, v1) {
		t.Fatalf("reader saw a mix: %v", err)
	}

	// Concurrent writers: the result is one of them, whole.
	versions := make([][]byte, 6)
	var wg sync.WaitGroup
	for i := range versions {
		versions[i] = bytes.Repeat([]byte{byte('a' + i)}, 100_000+i*7_000)
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := fs.Create(ctx, "doc.txt", store.FileCreateOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			for off := 0; off < len(versions[i]); off += 4096 {
				w.Write(versions[i][off:min(off+4096, len(versions[i]))])
			}
			if _, _, err := w.Commit(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	final := readFile(t, fs, "doc.txt")
	if !slices.ContainsFunc(versions, func(v []byte) bool { return bytes.Equal(v, final) }) {
		t.Fatal("concurrent writers mixed")
	}
	used, _, _ := a.Used(ctx)
	if used != int64(len(final)) {
		t.Fatalf("used %d, want %d", used, len(final))
	}

	// Preconditions are checked at commit.
	fi, _ := fs.Stat(ctx, "doc.txt")
	w, _ = fs.Create(ctx, "doc.txt", store.FileCreateOptions{IfMatch: fi.ETag})
	putFile(t, fs, "doc.txt", []byte("someone else"))
	w.Write([]byte("mine"))
	_, _, err = w.Commit(ctx)
	mustErr(t, err, store.ErrModified, "commit after a concurrent change")
	_, err = fs.Create(ctx, "doc.txt", store.FileCreateOptions{IfNoneMatch: true})
	mustErr(t, err, store.ErrModified, "If-None-Match on an existing file")
	if string(readFile(t, fs, "doc.txt")) != "someone else" {
		t.Fatal("failed precondition changed the file")
	}
}

func TestFilesQuota(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "quota@example.org", "password1")
	if err := d.SetQuota(ctx, "quota@example.org", 300_000); err != nil {
		t.Fatal(err)
	}
	fs := a.Files()
	putFile(t, fs, "a.bin", make([]byte, 200_000))

	_, err := fs.Create(ctx, "b.bin", store.FileCreateOptions{ExpectedSize: 200_000})
	mustErr(t, err, store.ErrOverQuota, "announced size beyond quota")
	w, err := fs.Create(ctx, "b.bin", store.FileCreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	for i := 0; i < 50 && werr == nil; i++ {
		_, werr = w.Write(make([]byte, 10_000))
	}
	mustErr(t, werr, store.ErrOverQuota, "streaming beyond quota")
	_, _, err = w.Commit(ctx)
	mustErr(t, err, store.ErrOverQuota, "commit beyond quota")
	_, err = fs.Stat(ctx, "b.bin")
	mustErr(t, err, store.ErrNotFound, "over-quota file")

	// Replacing a file counts only the difference.
	putFile(t, fs, "a.bin", make([]byte, 290_000))
	_, err = fs.Copy(ctx, "a.bin", "c.bin", store.FileCopyOptions{})
	mustErr(t, err, store.ErrOverQuota, "copy beyond quota")
	if err := fs.Remove(ctx, "a.bin", nil); err != nil {
		t.Fatal(err)
	}
	if used, _, _ := a.Used(ctx); used != 0 {
		t.Fatalf("used %d after removing everything", used)
	}
}

func TestFilesPathAttacks(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "paths@example.org", "password1")
	fs := a.Files()
	fs.Mkdir(ctx, "dir", nil)
	bad := []string{
		"..", "dir/..", "dir/../..", "./x", "dir/.", "%2e%2e", "dir/%2E%2e/x", "%252e%252e", "a%2fb",
		"x\x00y", "x\ny", "x\ty", "x\x7fy", "x\u0085y", strings.Repeat("n", 256), "bad\xffutf8",
		strings.Repeat("d/", 65) + "f",
	}
	for _, p := range bad {
		if _, err := fs.Stat(ctx, p); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("stat %q: %v", p, err)
		}
		if _, err := fs.Create(ctx, p, store.FileCreateOptions{}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("create %q: %v", p, err)
		}
		if _, err := fs.Mkdir(ctx, p, nil); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("mkdir %q: %v", p, err)
		}
		if _, err := fs.Move(ctx, "dir", p, store.FileCopyOptions{}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("move to %q: %v", p, err)
		}
	}
	// Allowed: long (255 bytes), Unicode, odd but harmless names.
	for _, p := range []string{strings.Repeat("n", 255), "Übung – ½.txt", "a\\b", "...", ".hidden", "%41"} {
		putFile(t, fs, "dir/"+p, []byte("ok"))
	}
	// 64 levels deep is fine, 65 is not, also through a move.
	deep := strings.Repeat("d/", 63)
	for i := 1; i <= 63; i++ {
		if _, err := fs.Mkdir(ctx, strings.Repeat("d/", i), nil); err != nil {
			t.Fatal(i, err)
		}
	}
	putFile(t, fs, deep+"f", []byte("deep"))
	_, err := fs.Move(ctx, "d", "dir/d", store.FileCopyOptions{})
	mustErr(t, err, store.ErrInvalid, "move beyond the depth limit")
	_, err = fs.Copy(ctx, "d", "dir/d", store.FileCopyOptions{})
	mustErr(t, err, store.ErrInvalid, "copy beyond the depth limit")
	// The tree has exactly what was created: nothing escaped.
	if got := names(t, fs, ""); got != "d/ dir/" {
		t.Fatalf("root: %q", got)
	}
}

func TestFilesLocks(t *testing.T) {
	dir := t.TempDir()
	d, err := store.Open(dir, Options())
	if err != nil {
		t.Fatal(err)
	}
	d.AddDomain(ctx, "example.org")
	a, _ := User(t, d, "locks@example.org", "password1")
	fs := a.Files()
	fs.Mkdir(ctx, "coll", nil)
	putFile(t, fs, "coll/doc", []byte("v1"))

	excl := store.FileLockRequest{Scope: store.FileLockExclusive, Owner: []byte("<href xmlns=\"DAV:\">anna</href>"), Timeout: time.Hour}
	l, created, err := fs.Lock(ctx, "coll/doc", excl)
	if err != nil || created || !strings.HasPrefix(l.Token, "opaquelocktoken:") || l.Root != "coll/doc" {
		t.Fatalf("lock: %+v %v %v", l, created, err)
	}
	_, _, err = fs.Lock(ctx, "coll/doc", excl)
	mustErr(t, err, store.ErrFileLocked, "second exclusive lock")
	_, _, err = fs.Lock(ctx, "coll", store.FileLockRequest{Scope: store.FileLockShared, Infinite: true, Timeout: time.Hour})
	mustErr(t, err, store.ErrFileLocked, "depth-infinity lock over a locked member")

	// Without the token nothing changes; with it everything works.
	_, err = fs.Create(ctx, "coll/doc", store.FileCreateOptions{})
	mustErr(t, err, store.ErrFileLocked, "write without token")
	mustErr(t, fs.Remove(ctx, "coll/doc", nil), store.ErrFileLocked, "remove without token")
	mustErr(t, fs.Remove(ctx, "coll", nil), store.ErrFileLocked, "remove parent without token")
	_, err = fs.Move(ctx, "coll/doc", "moved", store.FileCopyOptions{})
	mustErr(t, err, store.ErrFileLocked, "move without token")
	_, err = fs.Copy(ctx, "coll", "copy", store.FileCopyOptions{})
	if err != nil {
		t.Fatalf("copying a locked file is allowed: %v", err)
	}
	if ls, _ := fs.Locks(ctx, "copy/doc"); len(ls) != 0 {
		t.Fatal("locks followed a copy")
	}
	mustErr(t, fs.SetProps(ctx, "coll/doc", []store.FilePropPatch{{FilePropName: store.FilePropName{Local: "x"}, Value: []byte("1")}}, nil),
		store.ErrFileLocked, "proppatch without token")
	putFile(t, fs, "coll/doc", []byte("v2"), l.Token)
	putFile(t, fs, "coll/other", []byte("unlocked sibling"))

	// Refresh and discovery, also after a restart.
	if _, err := fs.Refresh(ctx, "coll/doc", []string{"opaquelocktoken:bogus"}, time.Hour); !errors.Is(err, store.ErrFileNoLock) {
		t.Fatalf("refresh with a wrong token: %v", err)
	}
	a.Close()
	d.Close()
	d, err = store.Open(dir, Options())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	a, err = d.Login(ctx, "locks@example.org", "password1", store.ScopeDAV)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	fs = a.Files()
	ls, err := fs.Locks(ctx, "coll/doc")
	if err != nil || len(ls) != 1 || ls[0].Token != l.Token || string(ls[0].Owner) != string(excl.Owner) {
		t.Fatalf("locks after restart: %+v %v", ls, err)
	}
	if r, err := fs.Refresh(ctx, "coll/doc", []string{l.Token}, 2*time.Hour); err != nil || r.Timeout != 2*time.Hour {
		t.Fatalf("refresh: %+v %v", r, err)
	}
	mustErr(t, fs.Unlock(ctx, "coll/doc", "opaquelocktoken:bogus"), store.ErrFileNoLock, "unlock with a wrong token")
	mustErr(t, fs.Unlock(ctx, "coll/other", l.Token), store.ErrFileNoLock, "unlock through another resource")
	if err := fs.Unlock(ctx, "coll/doc", l.Token); err != nil {
		t.Fatal(err)
	}
	putFile(t, fs, "coll/doc", []byte("v3"))

	// Shared locks stack; a depth-infinity lock covers members, new ones too.
	sh := store.FileLockRequest{Scope: store.FileLockShared, Infinite: true, Timeout: time.Hour}
	l1, _, err := fs.Lock(ctx, "coll", sh)
	if err != nil {
		t.Fatal(err)
	}
	l2, _, err := fs.Lock(ctx, "coll", sh)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = fs.Lock(ctx, "coll/doc", excl)
	mustErr(t, err, store.ErrFileLocked, "exclusive under a shared lock")
	_, err = fs.Create(ctx, "coll/new", store.FileCreateOptions{Tokens: []string{l1.Token}})
	mustErr(t, err, store.ErrFileLocked, "one of two shared tokens")
	putFile(t, fs, "coll/new", []byte("new"), l1.Token, l2.Token)
	if ls, _ := fs.Locks(ctx, "coll/new"); len(ls) != 2 || ls[0].Root != "coll" {
		t.Fatalf("covering locks: %+v", ls)
	}
	if err := fs.Unlock(ctx, "coll/new", l1.Token); err != nil { // through a member
		t.Fatal(err)
	}
	fs.Unlock(ctx, "coll", l2.Token)

	// LOCK on an unmapped path makes an empty file; unlocked unwritten, it goes.
	ln, created, err := fs.Lock(ctx, "coll/lock-null", excl)
	if err != nil || !created {
		t.Fatalf("lock-null: %v %v", created, err)
	}
	if fi, err := fs.Stat(ctx, "coll/lock-null"); err != nil || fi.Size != 0 || len(readFile(t, fs, "coll/lock-null")) != 0 {
		t.Fatalf("lock-null stat: %+v %v", fi, err)
	}
	fs.Unlock(ctx, "coll/lock-null", ln.Token)
	_, err = fs.Stat(ctx, "coll/lock-null")
	mustErr(t, err, store.ErrNotFound, "lock-null after unlock")
	_, _, err = fs.Lock(ctx, "nope/x", excl)
	mustErr(t, err, store.ErrFileNoParent, "lock without parent")
	ln, _, _ = fs.Lock(ctx, "coll/written", excl)
	putFile(t, fs, "coll/written", []byte("kept"), ln.Token)
	fs.Unlock(ctx, "coll/written", ln.Token)
	if string(readFile(t, fs, "coll/written")) != "kept" {
		t.Fatal("written lock-null resource lost")
	}

	// Expired locks no longer count.
	short := excl
	short.Timeout = time.Second
	if _, _, err := fs.Lock(ctx, "coll/doc", short); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if ls, _ := fs.Locks(ctx, "coll/doc"); len(ls) != 0 {
		t.Fatalf("expired lock reported: %+v", ls)
	}
	putFile(t, fs, "coll/doc", []byte("after expiry"))

	// Moving a locked tree drops its locks (with the token).
	l3, _, _ := fs.Lock(ctx, "coll/doc", excl)
	if _, err := fs.Move(ctx, "coll", "coll2", store.FileCopyOptions{Tokens: []string{l3.Token}}); err != nil {
		t.Fatal(err)
	}
	if ls, _ := fs.Locks(ctx, "coll2/doc"); len(ls) != 0 {
		t.Fatal("lock moved with its resource")
	}
}

func TestFilesMarkersNeverInClear(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "fmarker@example.org", "password1")
	fs := a.Files()
	const (
		folder  = "MarkerFolderGrault"
		file    = "MarkerFileGarply.txt"
		content = "MarkerContentWaldo"
		prop    = "MarkerPropFred"
		owner   = "MarkerOwnerPlugh"
	)
	fs.Mkdir(ctx, folder, nil)
	putFile(t, fs, folder+"/"+file, []byte(content))
	putFile(t, fs, folder+"/big-"+file, bytes.Repeat([]byte(content+" "), 20000))
	fs.SetProps(ctx, folder+"/"+file, []store.FilePropPatch{{FilePropName: store.FilePropName{Space: "urn:" + prop, Local: prop}, Value: []byte(prop)}}, nil)
	fs.Copy(ctx, folder, folder+"2", store.FileCopyOptions{})
	fs.Lock(ctx, folder+"/"+file, store.FileLockRequest{Scope: store.FileLockShared, Owner: []byte(owner), Timeout: time.Hour})
	a.Close()
	d.Close()
	assertNoFileContains(t, d.Dir(), folder, file, content, prop, owner)
}

// TestFilesTreeRandom runs random operations against a model of the tree.
func TestFilesTreeRandom(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "random@example.org", "password1")
	fs := a.Files()
	model := map[string][]byte{"": nil} // path -> content; nil means folder
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(dirs bool) string {
		var ps []string
		for p, c := range model {
			if !dirs || c == nil {
				ps = append(ps, p)
			}
		}
		slices.Sort(ps)
		return ps[rng.IntN(len(ps))]
	}
	join := func(dir, name string) string {
		if dir == "" {
			return name
		}
		return dir + "/" + name
	}
	for i := range 400 {
		name := fmt.Sprintf("n%d", rng.IntN(6))
		switch op := rng.IntN(5); op {
		case 0:
			p := join(pick(true), name)
			if _, ok := model[p]; ok {
				continue
			}
			if _, err := fs.Mkdir(ctx, p, nil); err != nil {
				t.Fatalf("%d mkdir %s: %v", i, p, err)
			}
			model[p] = nil
		case 1:
			p := join(pick(true), name)
			if c, ok := model[p]; ok && c == nil {
				continue
			}
			content := []byte(fmt.Sprintf("content %d", i))
			putFile(t, fs, p, content)
			model[p] = content
		case 2, 3:
			src, dst := pick(false), join(pick(true), name)
			if src == "" || dst == src || strings.HasPrefix(dst+"/", src+"/") || strings.HasPrefix(src+"/", dst+"/") {
				continue
			}
			var err error
			if op == 2 {
				_, err = fs.Copy(ctx, src, dst, store.FileCopyOptions{Overwrite: true})
			} else {
				_, err = fs.Move(ctx, src, dst, store.FileCopyOptions{Overwrite: true})
			}
			if err != nil {
				t.Fatalf("%d op %d %s -> %s: %v", i, op, src, dst, err)
			}
			for p := range model {
				if p == dst || strings.HasPrefix(p, dst+"/") {
					delete(model, p)
				}
			}
			for p, c := range model {
				if p == src || strings.HasPrefix(p, src+"/") {
					model[dst+p[len(src):]] = c
					if op == 3 {
						delete(model, p)
					}
				}
			}
		case 4:
			p := pick(false)
			if p == "" {
				continue
			}
			if err := fs.Remove(ctx, p, nil); err != nil {
				t.Fatalf("%d remove %s: %v", i, p, err)
			}
			for q := range model {
				if q == p || strings.HasPrefix(q, p+"/") {
					delete(model, q)
				}
			}
		}
	}
	var total int64
	for p, c := range model {
		if p == "" {
			continue
		}
		fi, err := fs.Stat(ctx, p)
		if err != nil || fi.Dir != (c == nil) {
			t.Fatalf("%s: %+v %v", p, fi, err)
		}
		if c != nil {
			total += int64(len(c))
			if got := readFile(t, fs, p); sha256.Sum256(got) != sha256.Sum256(c) {
				t.Fatalf("%s: %q want %q", p, got, c)
			}
		}
	}
	var count func(string) int
	count = func(p string) int {
		list, err := fs.ReadDir(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		n := len(list)
		for _, fi := range list {
			if fi.Dir {
				n += count(join(p, fi.Name))
			}
		}
		return n
	}
	if n := count(""); n != len(model)-1 {
		t.Fatalf("tree has %d nodes, model %d", n, len(model)-1)
	}
	if used, _, _ := a.Used(ctx); used != total {
		t.Fatalf("used %d, want %d", used, total)
	}
}

func TestFilesUnicodeNormalization(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "nfc@example.org", "password1")
	fs := a.Files()
	const nfc, nfd = "\u00dcbung", "U\u0308bung" // "Übung" as Windows and as macOS may send it
	fs.Mkdir(ctx, nfc, nil)
	putFile(t, fs, nfc+"/Br\u00fcche.txt", []byte("composed"))
	if got := string(readFile(t, fs, nfd+"/Bru\u0308che.txt")); got != "composed" {
		t.Fatalf("decomposed lookup: %q", got)
	}
	_, err := fs.Mkdir(ctx, nfd, nil)
	mustErr(t, err, store.ErrExists, "mkdir in the other form")
	putFile(t, fs, nfd+"/Bru\u0308che.txt", []byte("replaced"))
	if got := names(t, fs, nfc); got != "Br\u00fcche.txt" {
		t.Fatalf("names keep their first form: %q", got)
	}
	_, err = fs.Move(ctx, nfc, nfd+"/inner", store.FileCopyOptions{})
	mustErr(t, err, store.ErrFileForbidden, "move into itself in the other form")
	_, err = fs.Copy(ctx, nfc, nfd, store.FileCopyOptions{Overwrite: true})
	mustErr(t, err, store.ErrFileForbidden, "copy onto itself in the other form")
}
