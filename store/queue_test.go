package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kreide/store"
	"kreide/store/storetest"
)

func spool(t *testing.T, q *store.Queue, content string) *store.Spool {
	t.Helper()
	s := q.NewSpool()
	if _, err := io.WriteString(s, content); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(); err != nil {
		t.Fatal(err)
	}
	return s
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSpoolSizes(t *testing.T) {
	d := storetest.Open(t)
	q := d.Queue()
	for _, n := range []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 300 << 10} {
		for _, scratch := range []bool{false, true} {
			content := strings.Repeat("x", n)
			s := q.NewSpool()
			if scratch {
				s = q.NewScratch()
			}
			io.WriteString(s, content)
			if err := s.Finish(); err != nil {
				t.Fatal(err)
			}
			if s.Size() != int64(n) {
				t.Fatalf("size %d, want %d", s.Size(), n)
			}
			// Two readers at once see the whole content.
			r1, err := s.Reader()
			if err != nil {
				t.Fatal(err)
			}
			r2, _ := s.Reader()
			if readAll(t, r1) != content || readAll(t, r2) != content {
				t.Fatalf("n=%d scratch=%v: content differs", n, scratch)
			}
			s.Close()
		}
	}
	// Nothing is left behind.
	entries, _ := os.ReadDir(filepath.Join(d.Dir(), "queue"))
	if len(entries) != 0 {
		t.Fatalf("queue dir holds %d files", len(entries))
	}
}

func TestQueueLifecycle(t *testing.T) {
	d := storetest.Open(t)
	ctx := context.Background()
	q := d.Queue()
	content := "Subject: queued\r\n\r\nmarker-queue-store " + strings.Repeat("y", 100<<10)
	s := spool(t, q, content)
	m := &store.QueueMessage{From: "alice@example.org", Account: "acct", Prefix: []byte("DKIM-Signature: x\r\n"),
		Recipients: []store.QueueRecipient{{Addr: "carol@remote.test", State: store.RcptPending}}}
	if err := q.Add(ctx, m, s); err != nil {
		t.Fatal(err)
	}
	s.Close() // committed: closing keeps it
	if m.ID == "" || m.Size != int64(len(content)) || m.NextAttempt.IsZero() {
		t.Fatalf("%+v", m)
	}
	list, err := q.List(ctx)
	if err != nil || len(list) != 1 || list[0].From != "alice@example.org" || list[0].Recipients[0].Addr != "carol@remote.test" {
		t.Fatalf("%+v %v", list, err)
	}
	r, err := q.Open(ctx, &list[0])
	if err != nil {
		t.Fatal(err)
	}
	if readAll(t, r) != content {
		t.Fatal("content differs")
	}
	r.Close()

	// No file holds the content, the envelope or the prefix in clear.
	filepath.WalkDir(d.Dir(), func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		for _, marker := range []string{"marker-queue-store", "carol@remote.test", "alice@example.org", "DKIM-Signature"} {
			if bytes.Contains(b, []byte(marker)) {
				t.Errorf("%s holds %q in clear", p, marker)
			}
		}
		return nil
	})

	m.Attempts, m.NextAttempt = 1, time.Now().Add(time.Hour)
	m.Recipients[0].LastError = "451 try later"
	if err := q.Update(ctx, m); err != nil {
		t.Fatal(err)
	}
	got, err := q.Get(ctx, m.ID)
	if err != nil || got.Attempts != 1 || got.Recipients[0].LastError != "451 try later" {
		t.Fatalf("%+v %v", got, err)
	}
	if err := q.Remove(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := q.Update(ctx, m); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update after remove: %v", err)
	}
	if _, err := q.Get(ctx, m.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d.Dir(), "queue", m.ID)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("spool file left after Remove")
	}
	for _, bad := range []string{"", "../system.db", "a/b"} {
		if err := q.Remove(ctx, bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Remove(%q): %v", bad, err)
		}
	}
}

func TestQueueRefusals(t *testing.T) {
	d := storetest.Open(t)
	ctx := context.Background()
	q := d.Queue()
	sc := q.NewScratch()
	sc.Finish()
	if err := q.Add(ctx, &store.QueueMessage{Recipients: []store.QueueRecipient{{Addr: "a@b.test", State: store.RcptPending}}}, sc); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("scratch spool queued: %v", err)
	}
	s := spool(t, q, "x")
	if err := q.Add(ctx, &store.QueueMessage{}, s); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("no recipients: %v", err)
	}
	s.Close()
	if _, err := s.Write([]byte("more")); err == nil {
		t.Fatal("write after finish")
	}
}

func TestQueueSweep(t *testing.T) {
	path := t.TempDir()
	d, err := store.Open(path, storetest.Options())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	q := d.Queue()
	keep := spool(t, q, "keep")
	m := &store.QueueMessage{Recipients: []store.QueueRecipient{{Addr: "a@b.test", State: store.RcptPending}}}
	if err := q.Add(ctx, m, keep); err != nil {
		t.Fatal(err)
	}
	// A crash while a large spool was being written leaves a tmp file.
	crashed := q.NewSpool()
	crashed.Write(bytes.Repeat([]byte("z"), 200<<10))
	crashed.Finish()
	orphan := filepath.Join(path, "queue", "0123456789abcdef")
	os.WriteFile(orphan, []byte("orphan"), 0o600)
	d.Close()

	d, err = store.Open(path, storetest.Options())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Queue().Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(path, "queue"))
	if len(entries) != 1 || entries[0].Name() != m.ID {
		names := []string{}
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("after sweep: %v", names)
	}
	got, err := d.Queue().Get(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	r, err := d.Queue().Open(ctx, &got)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if readAll(t, r) != "keep" {
		t.Fatal("queued content lost")
	}
}
