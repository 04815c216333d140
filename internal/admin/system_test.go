package admin

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kreide/config"
	"kreide/store"
	"kreide/store/storetest"
)

// queueMessage puts a message for a remote recipient in d's queue, due in an hour.
func queueMessage(t *testing.T, d *store.Directory) string {
	t.Helper()
	ctx := context.Background()
	sp := d.Queue().NewSpool()
	io.WriteString(sp, "Subject: hello\r\n\r\nhello\r\n")
	if err := sp.Finish(); err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	m := &store.QueueMessage{From: "anna@school.test", Created: time.Now(), NextAttempt: time.Now().Add(time.Hour),
		Recipients: []store.QueueRecipient{{Addr: "bob@remote.example", State: store.RcptPending, LastError: "451 try later"}}}
	if err := d.Queue().Add(ctx, m, sp); err != nil {
		t.Fatal(err)
	}
	return m.ID
}

// fakeQueue stands for the running SMTP server's queue.
type fakeQueue struct{ retried, dropped []string }

func (f *fakeQueue) QueueRetry(_ context.Context, id string) error {
	f.retried = append(f.retried, id)
	return nil
}

func (f *fakeQueue) QueueDrop(_ context.Context, id string) error {
	f.dropped = append(f.dropped, id)
	return nil
}

func TestSystemExecute(t *testing.T) {
	ctx := context.Background()
	d := openDir(t)

	// DNS records.
	if resp := Execute(ctx, d, Request{Op: OpDNSRecords}); !strings.Contains(resp.Error, "no hostname") {
		t.Errorf("dns.records without hostname: %+v", resp)
	}
	resp := Execute(ctx, d, Request{Op: OpDNSRecords, Hostname: "mail.school.test"})
	if resp.Error != "" {
		t.Fatal(resp.Error)
	}
	kinds := map[string]int{}
	for _, r := range resp.Records {
		kinds[r.Type]++
		if r.Note == "" {
			t.Errorf("record %s %s has no note", r.Name, r.Type)
		}
	}
	if kinds["MX"] != 1 || kinds["TXT"] < 6 || kinds["SRV"] != 6 || kinds["CNAME"] != 2 {
		t.Errorf("records by type: %v", kinds)
	}
	if line := resp.Records[0].ZoneLine(); line != "school.test.\tIN\tMX\t10 mail.school.test." {
		t.Errorf("zone line %q", line)
	}

	// The queue, directly in the store.
	id := queueMessage(t, d)
	list := Execute(ctx, d, Request{Op: OpQueueList})
	if list.Error != "" || len(list.Queue) != 1 || list.Queue[0].ID != id || list.Queue[0].Recipients[0].State != "pending" ||
		list.Queue[0].Recipients[0].LastError != "451 try later" || !list.Queue[0].NextAttempt.After(time.Now()) {
		t.Fatalf("queue.list: %+v", list)
	}
	if r := Execute(ctx, d, Request{Op: OpQueueRetry, ID: id}); r.Error != "" || r.Woken {
		t.Fatalf("queue.retry: %+v", r)
	}
	if l := Execute(ctx, d, Request{Op: OpQueueList}); l.Queue[0].NextAttempt.After(time.Now()) {
		t.Errorf("queue.retry left the next attempt at %v", l.Queue[0].NextAttempt)
	}
	for _, op := range []string{OpQueueRetry, OpQueueDrop} {
		if r := Execute(ctx, d, Request{Op: op, ID: "nope"}); r.Error != "there is no queued message nope (see kreide queue list)" {
			t.Errorf("%s nope: %q", op, r.Error)
		}
		if r := Execute(ctx, d, Request{Op: op}); !strings.Contains(r.Error, "no queue id") {
			t.Errorf("%s without id: %q", op, r.Error)
		}
	}
	// Through a running queue: it is the one that acts.
	fq := &fakeQueue{}
	if r := execute(ctx, d, Request{Op: OpQueueRetry, ID: id}, &live{queue: fq}); r.Error != "" || !r.Woken || len(fq.retried) != 1 {
		t.Errorf("queue.retry through the running queue: %+v %+v", r, fq)
	}
	if r := execute(ctx, d, Request{Op: OpQueueDrop, ID: id}, &live{queue: fq}); r.Error != "" || len(fq.dropped) != 1 {
		t.Errorf("queue.drop through the running queue: %+v %+v", r, fq)
	}
	if r := Execute(ctx, d, Request{Op: OpQueueDrop, ID: id}); r.Error != "" {
		t.Fatal(r.Error)
	}
	if l := Execute(ctx, d, Request{Op: OpQueueList}); len(l.Queue) != 0 {
		t.Errorf("queue after drop: %+v", l.Queue)
	}

	// Backups: into a path, or staged in the data dir.
	if r := Execute(ctx, d, Request{Op: OpBackup, Path: "relative"}); !strings.Contains(r.Error, "not an absolute path") {
		t.Errorf("backup to a relative path: %q", r.Error)
	}
	full := filepath.Join(t.TempDir(), "full")
	os.MkdirAll(full, 0o700)
	os.WriteFile(filepath.Join(full, "x"), nil, 0o600)
	if r := Execute(ctx, d, Request{Op: OpBackup, Path: full}); !strings.Contains(r.Error, "is not empty: a backup goes into a new or empty directory") {
		t.Errorf("backup into a full directory: %q", r.Error)
	}
	staged := Execute(ctx, d, Request{Op: OpBackup})
	if staged.Error != "" || !strings.HasPrefix(staged.Path, stagingPrefix) {
		t.Fatalf("staged backup: %+v", staged)
	}
	if problems := Problems(store.Verify(ctx, filepath.Join(d.Dir(), staged.Path))); len(problems) > 0 {
		t.Errorf("staged backup: %v", problems)
	}
	if r := Execute(ctx, d, Request{Op: OpVerify}); r.Error != "" || len(r.Problems) != 0 {
		t.Errorf("verify: %+v", r)
	}
	if n := stagingDirs(t, d.Dir()); n != 1 {
		t.Errorf("verify left %d staging directories (1 is the staged backup)", n)
	}
	if r := Execute(ctx, d, Request{Op: OpPing}); r.Error != "" {
		t.Errorf("ping: %+v", r)
	}
}

func stagingDirs(t *testing.T, dataDir string) int {
	t.Helper()
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), stagingPrefix) {
			n++
		}
	}
	return n
}

// testConfig is a config for domain school.test with its data dir under a
// temporary directory (not created).
func testConfig(t *testing.T) *config.Config {
	cfg := config.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Domains = []string{"school.test"}
	cfg.DemoAccount = ""
	return cfg
}

// Backup, verify and restore, with serve (the socket) and without.
func TestBackupRestoreVerify(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	os.MkdirAll(cfg.DataDir, 0o700)
	if r, err := Run(ctx, cfg, Request{Op: OpUserAdd, Address: "anna@school.test", Password: "password one"}); err != nil || r.Error != "" {
		t.Fatalf("user.add: %v %+v", err, r)
	}
	backups := t.TempDir()

	// Without serve: directly.
	direct := filepath.Join(backups, "direct")
	if res, err := Backup(ctx, cfg, direct); err != nil || res.Served {
		t.Fatalf("direct backup: %v %+v", err, res)
	}
	if p, err := VerifyBackup(ctx, direct); err != nil || len(p) > 0 {
		t.Fatalf("verify direct backup: %v %v", err, p)
	}
	if res, err := Verify(ctx, cfg); err != nil || res.Served || len(res.Problems) > 0 {
		t.Fatalf("verify without serve: %v %+v", err, res)
	}

	// With serve: through the socket; serve stages, the CLI moves.
	d, err := store.Open(cfg.DataDir, storetest.Options())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Listen(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	served := filepath.Join(backups, "deeper", "served")
	if res, err := Backup(ctx, cfg, served); err != nil || !res.Served {
		t.Fatalf("backup through serve: %v %+v", err, res)
	}
	if p, err := VerifyBackup(ctx, served); err != nil || len(p) > 0 {
		t.Fatalf("verify served backup: %v %v", err, p)
	}
	if res, err := Verify(ctx, cfg); err != nil || !res.Served || len(res.Problems) > 0 {
		t.Fatalf("verify through serve: %v %+v", err, res)
	}
	if n := stagingDirs(t, cfg.DataDir); n != 0 {
		t.Errorf("%d staging directories left in the data dir", n)
	}
	for _, tc := range []struct{ dst, want string }{
		{served, "is not empty"},
		{filepath.Join(cfg.DataDir, "users", "b"), "is inside the data dir"},
	} {
		if _, err := Backup(ctx, cfg, tc.dst); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("backup to %s: %v, want %q", tc.dst, err, tc.want)
		}
	}
	if err := Restore(ctx, cfg, served); err == nil || !strings.Contains(err.Error(), "kreide serve is running") {
		t.Errorf("restore while serving: %v", err)
	}
	srv.Close()
	d.Close()

	// Restore: never over data, always after checking the backup.
	if err := Restore(ctx, cfg, served); err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Errorf("restore over data: %v", err)
	}
	cfg2 := testConfig(t)
	if err := Restore(ctx, cfg2, served); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if r, err := Run(ctx, cfg2, Request{Op: OpUserList}); err != nil || len(r.Accounts) != 1 || r.Accounts[0].Login != "anna@school.test" {
		t.Fatalf("user.list after restore: %v %+v", err, r)
	}
	if res, err := Verify(ctx, cfg2); err != nil || len(res.Problems) > 0 {
		t.Fatalf("verify after restore: %v %+v", err, res)
	}
	// A damaged backup is refused, and leaves nothing behind.
	damaged := filepath.Join(backups, "damaged")
	if err := store.CopyTree(served, damaged); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(damaged, "system.db"), []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg3 := testConfig(t)
	if err := Restore(ctx, cfg3, damaged); err == nil || !strings.Contains(err.Error(), "is damaged") {
		t.Errorf("restore of a damaged backup: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(cfg3.DataDir)); len(entries) != 0 {
		t.Errorf("a failed restore left %d entries", len(entries))
	}
}

func TestSweepStaging(t *testing.T) {
	dir := t.TempDir()
	old, recent := filepath.Join(dir, stagingPrefix+"old"), filepath.Join(dir, stagingPrefix+"recent")
	other := filepath.Join(dir, "users")
	for _, p := range []string{old, recent, other} {
		os.MkdirAll(p, 0o700)
	}
	long := time.Now().Add(-48 * time.Hour)
	os.Chtimes(old, long, long)
	os.Chtimes(other, long, long)
	sweepStaging(dir, time.Now())
	for p, want := range map[string]bool{old: false, recent: true, other: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}

func TestCopyAndMoveTree(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(filepath.Join(src, "a", "b"), 0o700)
	os.WriteFile(filepath.Join(src, "a", "b", "f"), []byte("content"), 0o600)
	copied := filepath.Join(t.TempDir(), "copy")
	if err := store.CopyTree(src, copied); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(copied, "a", "b", "f")); err != nil || string(b) != "content" {
		t.Fatalf("copied file: %q %v", b, err)
	}
	if m := mustMode(t, copied); m != 0o700 {
		t.Errorf("copied tree mode %v", m)
	}
	// Onto an empty directory, by rename on one file system.
	moved := filepath.Join(t.TempDir(), "moved")
	os.MkdirAll(moved, 0o700)
	if err := moveTree(copied, moved); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(copied); !os.IsNotExist(err) {
		t.Errorf("source still there after move: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(moved, "a", "b", "f")); err != nil || string(b) != "content" {
		t.Fatalf("moved file: %q %v", b, err)
	}
}

func mustMode(t *testing.T, p string) os.FileMode {
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// Root does not open a data dir that belongs to kreide's user: the files it
// would create would be root's.
func TestRootRefusesForeignDataDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	cfg := testConfig(t)
	os.MkdirAll(cfg.DataDir, 0o700)
	if err := os.Chown(cfg.DataDir, 65534, 65534); err != nil {
		t.Skip("cannot chown:", err)
	}
	_, err := Run(context.Background(), cfg, Request{Op: OpUserList})
	if err == nil || !strings.Contains(err.Error(), "belongs to the user") || !strings.Contains(err.Error(), "sudo -u") {
		t.Fatalf("root on a foreign data dir: %v", err)
	}
	if entries, _ := os.ReadDir(cfg.DataDir); len(entries) != 0 {
		t.Errorf("root created %d entries in the foreign data dir", len(entries))
	}
}
