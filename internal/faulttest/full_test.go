package faulttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"kreide/store"
)

// mountTmpfs mounts a tmpfs of size bytes at a new directory, or skips the
// test when this process may not mount (not root, no CAP_SYS_ADMIN, a
// container without mount rights).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs to simulate a full disk (%v): run as root with mount rights to test this", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file until the file system is full and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, chunk := range []int{1 << 20, 64 << 10, 4 << 10, 512, 1} {
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
	}
	f.Sync()
	return p
}

// TestDiskFull: on a full disk, SMTP submission answers 452, IMAP APPEND
// answers NO, WebDAV PUT answers 507; nothing already stored is damaged
// (store.Verify, then the data is read back), and once space is free again
// everything works.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("disk-full test skipped in -short mode")
	}
	mnt := mountTmpfs(t, "24m")
	s := newSite(t, filepath.Join(mnt, "data"))
	s.start()

	// Data stored before the disk fills up.
	before := message("before-full", 100<<10)
	ic := imapLogin(s)
	if ic == nil {
		t.Fatalf("IMAP login failed\n%s", s.proc.log())
	}
	defer ic.Close()
	appendIMAP(t, ic, "INBOX", before, true)
	hc := httpClient()
	if code, _ := s.dav(hc, "PUT", "/files/before.bin", content("before.bin", 100<<10)); code != http.StatusCreated {
		t.Fatalf("PUT before the disk is full: %d", code)
	}

	filler := fill(t, mnt)
	big := message("when-full", 2<<20)

	// SMTP submission.
	sc, err := gosmtp.Dial(s.smtp)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if err := sc.Hello("client.school.test"); err != nil {
		t.Fatal(err)
	}
	if err := sc.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
		t.Fatal(err)
	}
	err = sendSMTP(sc, big)
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) || se.Code != 452 {
		t.Errorf("SMTP DATA on a full disk: %v, want 452", err)
	} else {
		t.Logf("SMTP on a full disk: %d %v %s", se.Code, se.EnhancedCode, se.Message)
	}

	// IMAP APPEND, and small writes.
	err = appendIMAP(t, ic, "INBOX", big, false)
	if err == nil {
		t.Error("IMAP APPEND on a full disk succeeded")
	} else {
		t.Logf("IMAP APPEND on a full disk: %v", err)
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Code == imap.ResponseCodeServerBug {
			t.Errorf("IMAP APPEND on a full disk: %v, want a NO that says what is wrong", err)
		}
	}
	// Small messages live in bbolt only: append until bbolt itself cannot
	// grow; what was acknowledged must survive.
	var smallAcked []string
	for i := range 400 {
		id := fmt.Sprintf("small-%d", i)
		if err := appendIMAP(t, ic, "INBOX", message(id, 3<<10), false); err != nil {
			t.Logf("small APPEND %d on a full disk: %v", i, err)
			break
		}
		smallAcked = append(smallAcked, id)
	}
	if _, err := ic.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	err = ic.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close()
	t.Logf("IMAP STORE on a full disk: %v", err)

	// WebDAV PUT.
	code, body := s.dav(hc, "PUT", "/files/when-full.bin", content("when-full.bin", 2<<20))
	if code != http.StatusInsufficientStorage {
		t.Errorf("WebDAV PUT on a full disk: %d %s, want 507", code, body)
	} else {
		t.Logf("WebDAV PUT on a full disk: %d %s", code, strings.TrimSpace(string(body)))
	}
	code, _ = s.dav(hc, "MKCOL", "/files/newdir/", nil)
	t.Logf("WebDAV MKCOL on a full disk: %d", code)
	// CalDAV: reported, not yet asserted (its error mapping is the CalDAV
	// package's; SECURITY.md lists it as a known gap).
	ev := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//kreide//test//EN\r\nBEGIN:VEVENT\r\nUID:full-1\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250301T100000Z\r\nSUMMARY:full\r\nDESCRIPTION:" +
		strings.Repeat("x", 200<<10) + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	code, body = s.dav(hc, "PUT", "/dav/calendars/"+user+"/calendar/full-1.ics", []byte(ev), "Content-Type", "text/calendar")
	if code != 507 {
		t.Errorf("CalDAV PUT on a full disk: %d %s, want 507", code, strings.TrimSpace(string(body)))
	}

	// Stop on the full disk, check, free the space, start again.
	ic.Close()
	sc.Close()
	s.stop()
	s.verify()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	s.start()
	ic = imapLogin(s)
	if ic == nil {
		t.Fatalf("IMAP login after the disk was freed failed\n%s", s.proc.log())
	}
	defer ic.Close()
	if _, err := ic.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := ic.Fetch(imap.UIDSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 || !bytes.Equal(msgs[0].FindBodySection(&imap.FetchItemBodySection{Peek: true}), before) {
		t.Fatalf("the message stored before the disk filled up: %v (%d messages)", err, len(msgs))
	}
	if code, got := s.dav(hc, "GET", "/files/before.bin", nil); code != 200 || !bytes.Equal(got, content("before.bin", 100<<10)) {
		t.Fatalf("the file stored before the disk filled up: %d, %d bytes", code, len(got))
	}
	if code, _ := s.dav(hc, "GET", "/files/when-full.bin", nil); code != http.StatusNotFound {
		t.Errorf("the upload refused on the full disk is visible: GET %d", code)
	}
	appendIMAP(t, ic, "INBOX", message("after-full", 2<<20), true)
	if code, _ := s.dav(hc, "PUT", "/files/after.bin", content("after.bin", 2<<20)); code != http.StatusCreated {
		t.Fatalf("PUT after the disk was freed: %d", code)
	}
	sc2, err := gosmtp.Dial(s.smtp)
	if err != nil {
		t.Fatal(err)
	}
	defer sc2.Close()
	if err := sc2.Hello("client.school.test"); err != nil {
		t.Fatal(err)
	}
	if err := sc2.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
		t.Fatal(err)
	}
	if err := sendSMTP(sc2, big); err != nil {
		t.Fatalf("SMTP after the disk was freed: %v", err)
	}
	ic.Close()
	sc2.Close()
	s.stop()
	s.verify()
	s.withStore(func(a *store.Account) {
		mb, err := a.MailboxByRole(context.Background(), store.RoleInbox)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("INBOX after the test: %d messages (%d small ones acknowledged on the full disk)", mb.Messages, len(smallAcked))
		if want := uint32(3 + len(smallAcked)); mb.Messages != want {
			t.Errorf("INBOX has %d messages, want %d (before, after, the SMTP one after the disk was freed, and the small ones acknowledged)", mb.Messages, want)
		}
	})
}

func appendIMAP(t *testing.T, c *imapclient.Client, mailbox string, msg []byte, must bool) error {
	t.Helper()
	cmd := c.Append(mailbox, int64(len(msg)), nil)
	if _, err := cmd.Write(msg); err != nil && must {
		t.Fatal(err)
	}
	err := cmd.Close()
	if err == nil {
		_, err = cmd.Wait()
	}
	if err != nil && must {
		t.Fatalf("APPEND: %v", err)
	}
	return err
}

func sendSMTP(c *gosmtp.Client, msg []byte) error {
	if err := c.Mail(user, nil); err != nil {
		return err
	}
	if err := c.Rcpt(user, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, bytes.NewReader(msg)); err != nil {
		return fmt.Errorf("writing DATA: %w", err)
	}
	return w.Close()
}
