package storetest

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kreide/store"
)

// TestBackupWhileServing takes a backup while messages are being delivered
// and expunged, restores it, and finds a consistent store whose every message
// reads back whole.
func TestBackupWhileServing(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "t@example.org", "password1")
	inbox, _ := a.MailboxByName(ctx, "INBOX")
	big := strings.Repeat("Musical photo ", 20000)
	for i := range 20 {
		appendText(t, a, "INBOX", "before", big[:1000+i*9000])
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var churn atomic.Int64
	wg.Add(1)
	go func() { // deliveries and expunges race the backup
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := d.Deliver(ctx, []store.Recipient{{AccountID: a.ID()}}, strings.NewReader("Subject: during\r\n\r\n"+big)); err != nil {
				t.Error(err)
				return
			}
			uids, _ := a.UIDs(ctx, inbox.ID)
			if len(uids) > 25 {
				a.Expunge(ctx, inbox.ID, uids[:3])
			}
			churn.Add(1)
		}
	}()
	dst := filepath.Join(t.TempDir(), "backup")
	for churn.Load() < 3 {
		time.Sleep(10 * time.Millisecond)
	}
	if err := d.Backup(ctx, dst); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if err := d.Backup(ctx, dst); err == nil {
		t.Fatal("backup into a non-empty dir must fail")
	}
	if err := store.Verify(ctx, dst); err != nil {
		t.Fatalf("backup does not verify: %v", err)
	}

	restored := filepath.Join(t.TempDir(), "restored")
	if err := store.Restore(ctx, dst, restored); err != nil {
		t.Fatal(err)
	}
	r, err := store.Open(restored, Options())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := r.Login(ctx, "t@example.org", "password1", store.ScopeIMAP)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	mb, _ := b.MailboxByName(ctx, "INBOX")
	uids, _ := b.UIDs(ctx, mb.ID)
	if len(uids) < 20 || int(mb.Messages) != len(uids) {
		t.Fatalf("restored %d messages, counter %d", len(uids), mb.Messages)
	}
	for _, uid := range uids {
		got := readAll(t, b, mb.ID, uid)
		if !strings.HasPrefix(got, "From: ") && !strings.HasPrefix(got, "Subject: during") {
			t.Fatalf("restored message %d damaged", uid)
		}
	}
}

func TestVerifyFindsDamage(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "t@example.org", "password1")
	appendText(t, a, "INBOX", "big", strings.Repeat("x", 200000))
	id := a.ID()
	a.Close()
	dir := d.Dir()
	d.Close()
	if err := store.Verify(ctx, dir); err != nil {
		t.Fatalf("healthy store: %v", err)
	}
	var blob string
	filepath.Walk(filepath.Join(dir, "users", id, "blobs"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			blob = p
		}
		return nil
	})
	os.Truncate(blob, 1000)
	if err := store.Verify(ctx, dir); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Fatalf("truncated blob not found: %v", err)
	}
	os.Remove(blob)
	if err := store.Verify(ctx, dir); err == nil {
		t.Fatal("missing blob not found")
	}
}

// TestVerifyFindsMissingFileBlob: Verify checks the blobs of the file tree
// too, not only those of messages.
func TestVerifyFindsMissingFileBlob(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "t@example.org", "password1")
	putFile(t, a.Files(), "/musical.jpg", []byte(strings.Repeat("jpeg", 50000)))
	id := a.ID()
	a.Close()
	dir := d.Dir()
	d.Close()
	if err := store.Verify(ctx, dir); err != nil {
		t.Fatalf("healthy store: %v", err)
	}
	var blobs []string
	filepath.Walk(filepath.Join(dir, "users", id, "blobs"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			blobs = append(blobs, p)
		}
		return nil
	})
	if len(blobs) != 1 {
		t.Fatalf("blob files %v", blobs)
	}
	os.Remove(blobs[0])
	if err := store.Verify(ctx, dir); err == nil {
		t.Fatal("missing file blob not found by Verify")
	}
}
