package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"kreide/store"
	"kreide/store/storetest"
)

// TestFilesList: a listing says what Stat, ReadDir, Props and Locks say,
// for folders with members, dead properties and locks rooted at the folder,
// at an ancestor (depth infinity) and at members.
func TestFilesList(t *testing.T) {
	ctx := context.Background()
	d := storetest.Open(t)
	a, _ := storetest.User(t, d, "lena@example.org", "lena password")
	fs := a.Files()
	for _, p := range []string{"Schule", "Schule/Klasse 5b", "Schule/leer", "Ärger"} {
		if _, err := fs.Mkdir(ctx, p, nil); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	sizeOf := map[string]int64{}
	for i := range 300 {
		p := fmt.Sprintf("Schule/Klasse 5b/Blatt %03d.txt", (i*7)%300)
		want = append(want, p)
		sizeOf[p] = int64(i)
		w, err := fs.Create(ctx, p, store.FileCreateOptions{ContentType: []string{"", "text/plain", "application/pdf"}[i%3]})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(make([]byte, i))
		if _, _, err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"Schule/b.txt", "Schule/A.txt", "Schule/ä.txt", "Ärger/x"} {
		w, _ := fs.Create(ctx, p, store.FileCreateOptions{})
		if _, _, err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	prop := func(v string) []store.FilePropPatch {
		return []store.FilePropPatch{{FilePropName: store.FilePropName{Space: "urn:x", Local: "p"}, Value: []byte(v)}}
	}
	for _, p := range []string{"Schule", "Schule/Klasse 5b", "Schule/Klasse 5b/Blatt 007.txt", "Schule/A.txt"} {
		if err := fs.SetProps(ctx, p, prop(p), nil); err != nil {
			t.Fatal(err)
		}
	}
	lock := func(p string, infinite bool) {
		t.Helper()
		if _, _, err := fs.Lock(ctx, p, store.FileLockRequest{Scope: store.FileLockShared, Infinite: infinite, Timeout: time.Hour, Owner: []byte("<o/>")}); err != nil {
			t.Fatal(err)
		}
	}
	lock("Schule", true)
	lock("Schule/Klasse 5b", false)
	lock("Schule/Klasse 5b/Blatt 010.txt", false)
	lock("Schule/Klasse 5b/Blatt 010.txt", false)
	lock("Schule/b.txt", false)

	all := store.FileListOptions{Members: true, Props: true, Locks: true}
	for _, p := range []string{"", "Schule", "Schule/Klasse 5b", "Schule/leer", "Ärger", "Schule/A.txt", "Schule/Klasse 5b/Blatt 010.txt"} {
		list, err := fs.List(ctx, p, all)
		if err != nil {
			t.Fatalf("List %q: %v", p, err)
		}
		self, err := fs.Stat(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		paths := []string{p}
		infos := []store.FileInfo{self}
		if self.Dir {
			kids, err := fs.ReadDir(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range kids {
				infos = append(infos, k)
				paths = append(paths, join(p, k.Name))
			}
		}
		if len(list) != len(infos) {
			t.Fatalf("List %q: %d entries, want %d", p, len(list), len(infos))
		}
		for i, e := range list {
			if e.FileInfo != infos[i] {
				t.Errorf("List %q [%d]: %+v, want %+v", p, i, e.FileInfo, infos[i])
			}
			props, err := fs.Props(ctx, paths[i])
			if err != nil || e.PropsErr != nil {
				t.Fatal(err, e.PropsErr)
			}
			if !reflect.DeepEqual(e.Props, props) {
				t.Errorf("List %q: props of %q: %v, want %v", p, paths[i], e.Props, props)
			}
			locks, err := fs.Locks(ctx, paths[i])
			if err != nil || e.LocksErr != nil {
				t.Fatal(err, e.LocksErr)
			}
			if len(e.Locks) != len(locks) || len(locks) > 0 && !reflect.DeepEqual(e.Locks, locks) {
				t.Errorf("List %q: locks of %q:\n%+v\nwant\n%+v", p, paths[i], e.Locks, locks)
			}
		}
		// Without options: the entries alone, and only the first without Members.
		bare, err := fs.List(ctx, p, store.FileListOptions{Members: true})
		if err != nil || len(bare) != len(list) || bare[0].Props != nil || bare[0].Locks != nil {
			t.Fatalf("List %q without props and locks: %d entries, %v", p, len(bare), err)
		}
		one, err := fs.List(ctx, p, store.FileListOptions{})
		if err != nil || len(one) != 1 || one[0].FileInfo != self {
			t.Fatalf("List %q, Depth 0: %+v, %v", p, one, err)
		}
	}
	// The 300 files, created out of order, listed sorted by name and each
	// with the size it was written with (ReadDir shares List's code, so
	// this checks against what was created).
	list, err := fs.List(ctx, "Schule/Klasse 5b", all)
	if err != nil || len(list) != 301 {
		t.Fatalf("listing of 300: %d entries, %v", len(list), err)
	}
	slices.Sort(want)
	for i, e := range list[1:] {
		if join("Schule/Klasse 5b", e.Name) != want[i] {
			t.Fatalf("listing of 300 [%d]: %q, want %q", i, e.Name, want[i])
		}
		if e.Size != sizeOf[want[i]] {
			t.Fatalf("%s: size %d, want %d", e.Name, e.Size, sizeOf[want[i]])
		}
	}
	if _, err := fs.List(ctx, "Schule/none", all); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("List of nothing: %v", err)
	}
	if _, err := fs.List(ctx, "Schule/A.txt/x", all); !errors.Is(err, store.ErrFileNoParent) {
		t.Fatalf("List below a file: %v", err)
	}
	if _, err := fs.List(ctx, "../x", all); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("List of ..: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := fs.List(cctx, "Schule/Klasse 5b", all); !errors.Is(err, context.Canceled) {
		t.Fatalf("List, cancelled: %v", err)
	}
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}
