package store

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"kreide/crypto"
)

func testDirectory(t *testing.T) *Directory {
	t.Helper()
	d, err := Open(t.TempDir(), Options{Argon2: func() crypto.Argon2Params {
		p := crypto.NewArgon2Params()
		p.Time, p.MemoryKiB, p.Threads = 1, 64, 1
		return p
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.AddDomain(context.Background(), "example.org"); err != nil {
		t.Fatal(err)
	}
	return d
}

// txID is the id of the database's last committed write transaction.
func txID(t *testing.T, db *bolt.DB) int {
	t.Helper()
	var id int
	if err := db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

func pendingCount(t *testing.T, a *Account) ([]byte, map[uint8]int) {
	t.Helper()
	var pending []byte
	wraps := map[uint8]int{}
	err := a.view(func(tx *bolt.Tx) error {
		pending = append([]byte(nil), tx.Bucket(bktAcctMeta).Get(metaPending)...)
		return tx.Bucket(bktMsgs).ForEach(func(k, v []byte) error {
			rec, err := unmarshalMsgRecord(v)
			if err != nil {
				return err
			}
			wraps[rec.KeyWrap]++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return pending, wraps
}

// closeHandle closes an account's handle as the idle reaper does.
func closeHandle(d *Directory, id string) {
	d.pool.remove(id)
}

func deliver(t *testing.T, d *Directory, id string, n int) {
	t.Helper()
	for i := range n {
		msg := "Subject: " + strconv.Itoa(i) + "\r\n\r\nbody\r\n"
		if errs, err := d.Deliver(context.Background(), []Recipient{{AccountID: id}}, strings.NewReader(msg)); err != nil || errs[0] != nil {
			t.Fatal(err, errs)
		}
	}
}

// waitUpgrade waits for the background re-wrap of the handle's open.
func waitUpgrade(t *testing.T, a *Account) ([]byte, map[uint8]int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		pending, wraps := pendingCount(t, a)
		if wraps[keyWrapDelivery] == 0 && wraps[keyWrapSealed] == 0 && len(pending) == 8 && getUint64(pending) == 0 {
			return pending, wraps
		}
	}
	pending, wraps := pendingCount(t, a)
	t.Fatalf("not upgraded: pending %x, key wraps %v", pending, wraps)
	return nil, nil
}

func TestOpenWritesNothing(t *testing.T) {
	d := testDirectory(t)
	ctx := context.Background()
	c, err := d.CreateAccount(ctx, "a@example.org", "password1")
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(d.userDir(c.Account.ID), "store.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := txID(t, db)
	db.Close()
	a, err := d.Login(ctx, "a@example.org", "password1", ScopeIMAP)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.MailboxByName(ctx, "INBOX"); err != nil {
		t.Fatal(err)
	}
	waitUpgrade(t, a)
	if after := txID(t, a.h.db); after != before {
		t.Fatalf("login committed %d write transactions to a new account's store", after-before)
	}
}

func TestUpgradeLocked(t *testing.T) {
	d := testDirectory(t)
	ctx := context.Background()
	c, err := d.CreateAccount(ctx, "a@example.org", "password1")
	if err != nil {
		t.Fatal(err)
	}
	id := c.Account.ID
	// Three handles' worth of deliveries: three delivery keys.
	for range 3 {
		deliver(t, d, id, 4)
		closeHandle(d, id)
	}
	a, err := d.Login(ctx, "a@example.org", "password1", ScopeIMAP)
	if err != nil {
		t.Fatal(err)
	}
	_, wraps := waitUpgrade(t, a)
	if wraps[keyWrapBlob] != 12 {
		t.Fatalf("key wraps %v, want 12 under the blob key", wraps)
	}
	// Delivered while the session is open: readable with the handle's own
	// delivery key, counted for the next open.
	deliver(t, d, id, 2)
	if pending, wraps := pendingCount(t, a); getUint64(pending) != 2 || wraps[keyWrapDelivery] != 2 {
		t.Fatalf("pending %d, key wraps %v", getUint64(pending), wraps)
	}
	inbox, err := a.MailboxByName(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	for uid := uint32(1); uid <= 14; uid++ {
		r, err := a.OpenMessage(ctx, inbox.ID, uid)
		if err != nil {
			t.Fatalf("uid %d: %v", uid, err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil || !strings.Contains(string(b), "body") {
			t.Fatalf("uid %d: %q, %v", uid, b, err)
		}
	}
	// The private key opened each old handle's delivery key once (the
	// re-wrap), not once per message, and not the current handle's own.
	a.h.dkeyMu.Lock()
	opened := len(a.h.opened)
	_, own := a.h.opened[a.h.dkey.Load().id]
	a.h.dkeyMu.Unlock()
	if opened != 3 || own {
		t.Fatalf("%d delivery keys opened with the private key (the handle's own: %v), want 3", opened, own)
	}
	a.Close()
	closeHandle(d, id)

	// A store from before the pending count: the first open looks anyway.
	deliver(t, d, id, 1)
	h, err := d.pool.acquire(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bktAcctMeta).Delete(metaPending) }); err != nil {
		t.Fatal(err)
	}
	d.pool.release(h)
	closeHandle(d, id)
	a, err = d.Login(ctx, "a@example.org", "password1", ScopeIMAP)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, wraps := waitUpgrade(t, a); wraps[keyWrapBlob] != 15 {
		t.Fatalf("key wraps %v, want 15 under the blob key", wraps)
	}
}

// mappedKiB is the resident size of this process's mappings of path.
func mappedKiB(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skip(err)
	}
	kib, in := 0, false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			in = len(f) >= 6 && f[5] == path
			continue
		}
		if in && len(f) >= 2 && f[0] == "Rss:" {
			n, _ := strconv.Atoi(f[1])
			kib += n
		}
	}
	return kib
}

func TestUnmapQuiet(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("drops mappings on Linux only")
	}
	d := testDirectory(t)
	ctx := context.Background()
	if _, err := d.CreateAccount(ctx, "a@example.org", "password1"); err != nil {
		t.Fatal(err)
	}
	a, err := d.Login(ctx, "a@example.org", "password1", ScopeIMAP)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	waitUpgrade(t, a)
	inbox, err := a.MailboxByName(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(d.userDir(a.ID()), "store.db")
	sys := filepath.Join(d.dir, "system.db")
	if mappedKiB(t, path) == 0 || mappedKiB(t, sys) == 0 {
		t.Fatal("no pages mapped after reading")
	}
	// The reaper's ticks as well as these count.
	for range int(unmapAfter/unmapTick) + 1 {
		d.pool.unmapQuiet()
	}
	if n := mappedKiB(t, path); n != 0 {
		t.Fatalf("store.db: %d KiB mapped after %v unused", n, unmapAfter)
	}
	if n := mappedKiB(t, sys); n != 0 {
		t.Fatalf("system.db: %d KiB mapped after %v unused", n, unmapAfter)
	}
	// Reading maps them again, and use keeps them mapped.
	mb, err := a.Mailbox(ctx, inbox.ID)
	if err != nil || mb.Name != "INBOX" {
		t.Fatalf("after unmapping: %+v, %v", mb, err)
	}
	if mappedKiB(t, path) == 0 {
		t.Fatal("store.db not mapped again by a read")
	}
	d.pool.unmapQuiet()
	if mappedKiB(t, path) == 0 {
		t.Fatal("store.db unmapped right after use")
	}
}
