package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"kreide/store"
)

// serveAddr is the address serve logged for the listen key ("listen.imap").
func serveAddr(t *testing.T, s *server, key string) string {
	t.Helper()
	_, log := s.output()
	m := regexp.MustCompile(`msg=listening key=` + regexp.QuoteMeta(key) + ` addr=(\S+)`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("serve did not log %s:\n%s", key, log)
	}
	return m[1]
}

// submitter sends numbered messages from anna to anna over SMTP submission.
type submitter struct {
	c    *gosmtp.Client
	sent atomic.Int32
}

func newSubmitter(t *testing.T, addr string) *submitter {
	t.Helper()
	c, err := gosmtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Hello("client.school.test"); err != nil {
		t.Fatal(err)
	}
	// Plaintext AUTH is allowed from loopback (auth.allow_plaintext).
	if err := c.Auth(sasl.NewPlainClient("", "anna@school.test", "password one")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &submitter{c: c}
}

// send sends the next message; its 250 means it is durable.
func (s *submitter) send() error {
	n := s.sent.Load() + 1
	msg := fmt.Sprintf("From: anna@school.test\r\nTo: anna@school.test\r\nSubject: message %d\r\nMessage-ID: <m%d@school.test>\r\n"+
		"Date: %s\r\n\r\nBody of message %d.\r\n", n, n, time.Now().Format(time.RFC1123Z), n)
	if err := s.c.SendMail("anna@school.test", []string{"anna@school.test"}, strings.NewReader(msg)); err != nil {
		return err
	}
	s.sent.Store(n)
	return nil
}

// Backup while serve runs and mail is being delivered; restore into a new
// data dir; serve from it: every message delivered before the backup began
// is there and readable over IMAP, and nothing in it is broken.
func TestBackupWhileDelivering(t *testing.T) {
	cfg, dataDir := writeConfig(t, "")
	s := startServe(t, cfg)
	ok(t, "password one\n", "user", "add", "anna@school.test", "-config", cfg)
	sub := newSubmitter(t, serveAddr(t, s, "listen.submission"))
	for range 5 {
		if err := sub.send(); err != nil {
			t.Fatal(err)
		}
	}

	// Keep delivering during the backup.
	before := int(sub.sent.Load())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sendErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := sub.send(); err != nil {
				sendErr = err
				return
			}
		}
	}()
	backupDir := filepath.Join(t.TempDir(), "backups", "kreide-1")
	out := ok(t, "", "backup", backupDir, "-config", cfg).stdout
	if !strings.Contains(out, "taken by kreide serve while serving") {
		t.Errorf("backup output:\n%s", out)
	}
	time.Sleep(100 * time.Millisecond) // a few more deliveries after the snapshot
	close(stop)
	wg.Wait()
	if sendErr != nil {
		t.Fatalf("delivery during the backup: %v", sendErr)
	}
	total := int(sub.sent.Load())
	t.Logf("%d messages before the backup, %d in all", before, total)

	// Checks while serving: the backup, and the live data through serve.
	if out := ok(t, "", "verify", "-backup", backupDir).stdout; !strings.Contains(out, "no problems found") {
		t.Errorf("verify -backup:\n%s", out)
	}
	if out := ok(t, "", "verify", "-config", cfg).stdout; !strings.Contains(out, "fresh snapshot taken by kreide serve") {
		t.Errorf("verify through serve:\n%s", out)
	}
	fails(t, 1, "kreide serve is running", "", "restore", backupDir, "-config", cfg)
	fails(t, 1, "is not empty", "", "backup", backupDir, "-config", cfg)
	if entries, _ := filepath.Glob(filepath.Join(dataDir, ".backup-*")); len(entries) > 0 {
		t.Errorf("snapshots left in the data dir: %v", entries)
	}
	s.stop(t, dataDir)
	if out := ok(t, "", "verify", "-config", cfg).stdout; !strings.Contains(out, "Checked the data dir") || strings.Contains(out, "snapshot") {
		t.Errorf("verify without serve:\n%s", out)
	}

	// Restore: never over the old data dir; into a new one.
	fails(t, 1, "is not empty", "", "restore", backupDir, "-config", cfg)
	cfg2, dataDir2 := writeConfig(t, "")
	out = ok(t, "", "restore", backupDir, "-config", cfg2).stdout
	if !strings.Contains(out, "Restored") {
		t.Errorf("restore output:\n%s", out)
	}
	s2 := startServe(t, cfg2)
	got := readInbox(t, serveAddr(t, s2, "listen.imap"))
	t.Logf("%d messages in the restored INBOX", len(got))
	if len(got) < before || len(got) > total {
		t.Errorf("restored INBOX has %d messages; %d were delivered before the backup and %d in all", len(got), before, total)
	}
	for i := 1; i <= before; i++ {
		if !got[i] {
			t.Errorf("message %d (delivered before the backup) is missing", i)
		}
	}
	s2.stop(t, dataDir2)
}

// readInbox logs in as anna and reads every message of INBOX in full; it
// returns the numbers of the messages found.
func readInbox(t *testing.T, addr string) map[int]bool {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("anna@school.test", "password one").Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	found := map[int]bool{}
	if sel.NumMessages == 0 {
		return found
	}
	var all imap.SeqSet
	all.AddRange(1, sel.NumMessages)
	msgs, err := c.Fetch(all, &imap.FetchOptions{
		BodySection: []*imap.FetchItemBodySection{{}},
	}).Collect()
	if err != nil {
		t.Fatalf("FETCH BODY[]: %v", err)
	}
	re := regexp.MustCompile(`Subject: message (\d+)\r\n[\s\S]*\r\n\r\nBody of message (\d+)\.`)
	for _, m := range msgs {
		var body []byte
		for _, b := range m.BodySection {
			body = b.Bytes
		}
		sm := re.FindSubmatch(body)
		if sm == nil || string(sm[1]) != string(sm[2]) {
			t.Errorf("message %d is not readable:\n%s", m.SeqNum, body)
			continue
		}
		var n int
		fmt.Sscan(string(sm[1]), &n)
		if found[n] {
			t.Errorf("message %d is there twice", n)
		}
		found[n] = true
	}
	c.Logout().Wait()
	return found
}

// queueOne puts a message to a recipient whose domain is not a valid DNS
// name (so that no delivery attempt leaves this machine) in the data dir's
// queue, due in an hour; serve must not be running.
func queueOne(t *testing.T, dataDir, subject string) string {
	t.Helper()
	d, err := store.Open(dataDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	sp := d.Queue().NewSpool()
	defer sp.Close()
	fmt.Fprintf(sp, "From: anna@school.test\r\nSubject: %s\r\n\r\nhello\r\n", subject)
	if err := sp.Finish(); err != nil {
		t.Fatal(err)
	}
	m := &store.QueueMessage{From: "anna@school.test", Created: time.Now().Add(-3 * time.Hour), NextAttempt: time.Now().Add(time.Hour), Attempts: 2,
		Recipients: []store.QueueRecipient{{Addr: "bob@bad..invalid", State: store.RcptPending, LastError: "451 4.4.1 greylisted, try later"}}}
	if err := d.Queue().Add(ctx, m, sp); err != nil {
		t.Fatal(err)
	}
	return m.ID
}

func queueScenario(t *testing.T, withServe bool) {
	cfg, dataDir := writeConfig(t, "")
	os.MkdirAll(dataDir, 0o700)
	ok(t, "password one\n", "user", "add", "anna@school.test", "-config", cfg)
	r := ok(t, "", "queue", "list", "-config", cfg)
	if r.stdout != "" || !strings.Contains(r.stderr, "The queue is empty") {
		t.Errorf("queue list of an empty queue: %+v", r)
	}
	retryID := queueOne(t, dataDir, "retry me")
	dropID := queueOne(t, dataDir, "drop me")
	var s *server
	if withServe {
		s = startServe(t, cfg)
	}
	list := ok(t, "", "queue", "list", "-config", cfg).stdout
	for _, want := range []string{"ID", "LAST ERROR", retryID, dropID, "anna@school.test", "bob@bad..invalid", "451 4.4.1 greylisted, try later", "in 59m", "3h"} {
		if !strings.Contains(list, want) {
			t.Errorf("queue list lacks %q:\n%s", want, list)
		}
	}
	fails(t, 1, "there is no queued message nope", "", "queue", "retry", "nope", "-config", cfg)
	fails(t, 1, "there is no queued message nope", "", "queue", "drop", "nope", "-config", cfg)
	fails(t, 2, "missing ID", "", "queue", "drop", "-config", cfg)

	if out := ok(t, "", "queue", "drop", dropID, "-config", cfg).stdout; !strings.Contains(out, "Dropped "+dropID) {
		t.Errorf("queue drop: %s", out)
	}
	out := ok(t, "", "queue", "retry", retryID, "-config", cfg).stdout
	t.Logf("queue retry: %s", out)
	switch {
	case strings.Contains(out, "again now"):
		// The running queue was woken: it tries at once, and the bad
		// domain fails for good: the message leaves the queue (bounced).
		deadline := time.Now().Add(20 * time.Second)
		for {
			r := ok(t, "", "queue", "list", "-config", cfg)
			if !strings.Contains(r.stdout, retryID) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the retried message is still queued:\n%s", r.stdout)
			}
			time.Sleep(100 * time.Millisecond)
		}
	case strings.Contains(out, "is due now"):
		list := ok(t, "", "queue", "list", "-config", cfg).stdout
		if strings.Contains(list, dropID) || (strings.Contains(list, retryID) && !regexp.MustCompile(retryID+`.* now `).MatchString(list)) {
			t.Errorf("queue list after retry and drop:\n%s", list)
		}
	default:
		t.Errorf("queue retry: %s", out)
	}
	if withServe {
		s.stop(t, dataDir)
	}
}

func TestQueueWithoutServe(t *testing.T) { queueScenario(t, false) }
func TestQueueThroughServe(t *testing.T) { queueScenario(t, true) }

func TestHelpAdminCommands(t *testing.T) {
	for _, args := range [][]string{
		{"dns"}, {"dns", "records"}, {"dns", "check"}, {"queue"}, {"queue", "list"}, {"queue", "retry"}, {"queue", "drop"},
		{"backup"}, {"restore"}, {"verify"}, {"setup"},
	} {
		r := kreide(t, "", append(args, "--help")...)
		name := strings.Join(append([]string{"kreide"}, args...), " ")
		if r.code != 0 || !strings.Contains(r.stdout, "Usage: "+name) || !strings.Contains(r.stdout, "Example:\n  ") {
			t.Errorf("%s --help: exit %d, stdout:\n%s", name, r.code, r.stdout)
		}
	}
	if r := ok(t, "", "--help"); !strings.Contains(r.stdout, "backup") || !strings.Contains(r.stdout, "setup") {
		t.Errorf("kreide --help does not list the new commands:\n%s", r.stdout)
	}
}
