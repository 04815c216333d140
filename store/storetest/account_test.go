package storetest

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
)

var ctx = context.Background()

func appendText(t testing.TB, a *store.Account, mailbox, subject, body string, flags ...string) store.Message {
	t.Helper()
	mb, err := a.MailboxByName(ctx, mailbox)
	if err != nil {
		t.Fatal(err)
	}
	msg := "From: Anna <anna@example.org>\r\nTo: b@example.org\r\nSubject: " + subject + "\r\nMessage-ID: <" + subject + "@x>\r\n\r\n" + body + "\r\n"
	m, err := a.Append(ctx, mb.ID, strings.NewReader(msg), flags, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readAll(t testing.TB, a *store.Account, mbox store.MailboxID, uid uint32) string {
	t.Helper()
	r, err := a.OpenMessage(ctx, mbox, uid)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCredentials(t *testing.T) {
	d := Open(t)
	a, recovery := User(t, d, "Teacher@Example.org", "correct horse")
	inbox, _ := a.MailboxByName(ctx, "INBOX")
	m := appendText(t, a, "INBOX", "notes", "parent meeting notes")

	if _, err := d.Login(ctx, "teacher@example.org", "wrong password", store.ScopeIMAP); !errors.Is(err, store.ErrAuthFailed) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := d.Login(ctx, "nobody@example.org", "correct horse", store.ScopeIMAP); !errors.Is(err, store.ErrAuthFailed) {
		t.Fatalf("unknown user: %v", err)
	}
	if _, err := d.CreateAccount(ctx, "teacher@example.org", "another one"); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := d.CreateAccount(ctx, "x@elsewhere.org", "another one"); !errors.Is(err, store.ErrUnknownDomain) {
		t.Fatalf("foreign domain: %v", err)
	}

	// App password: works for its scopes only, and a revoke is immediate even
	// though a successful login is remembered in memory.
	token, err := d.AddAppPassword(ctx, "teacher@example.org", "correct horse", "iPhone", []store.Scope{store.ScopeIMAP, store.ScopeSMTP})
	if err != nil {
		t.Fatal(err)
	}
	if len(strings.ReplaceAll(token, "-", "")) < 26 {
		t.Fatalf("token too short for 128 bits: %q", token)
	}
	b, err := d.Login(ctx, "teacher@example.org", token, store.ScopeIMAP)
	if err != nil {
		t.Fatalf("app password: %v", err)
	}
	if got := readAll(t, b, inbox.ID, m.UID); !strings.Contains(got, "parent meeting notes") {
		t.Fatalf("read through app password: %q", got)
	}
	b.Close()
	if _, err := d.Login(ctx, "teacher@example.org", strings.ToUpper(strings.ReplaceAll(token, "-", "")), store.ScopeIMAP); err != nil {
		t.Fatalf("app password typed without dashes in upper case: %v", err)
	}
	if _, err := d.Login(ctx, "teacher@example.org", token, store.ScopeDAV); !errors.Is(err, store.ErrAuthFailed) {
		t.Fatalf("app password outside its scope: %v", err)
	}
	list, err := d.AppPasswords(ctx, "teacher@example.org")
	if err != nil || len(list) != 1 || list[0].Label != "iPhone" || list[0].LastUsed.IsZero() {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := d.RevokeAppPassword(ctx, "teacher@example.org", "iPhone"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Login(ctx, "teacher@example.org", token, store.ScopeIMAP); !errors.Is(err, store.ErrAuthFailed) {
		t.Fatalf("revoked app password still works: %v", err)
	}

	// Password change keeps the data; the old password stops working.
	if err := d.ChangePassword(ctx, "teacher@example.org", "correct horse", "battery staple"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Login(ctx, "teacher@example.org", "correct horse", store.ScopeIMAP); !errors.Is(err, store.ErrAuthFailed) {
		t.Fatalf("old password after change: %v", err)
	}
	c, err := d.Login(ctx, "teacher@example.org", "battery staple", store.ScopeDAV)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, c, inbox.ID, m.UID); !strings.Contains(got, "parent meeting notes") {
		t.Fatal("data lost after password change")
	}
	c.Close()

	// Recovery code sets a new password; it is used up.
	if _, err := d.Recover(ctx, "teacher@example.org", "aaaa-bbbb", "new password 1"); !errors.Is(err, store.ErrAuthFailed) {
		t.Fatalf("bad recovery code: %v", err)
	}
	next, err := d.Recover(ctx, "teacher@example.org", recovery, "new password 1")
	if err != nil {
		t.Fatal(err)
	}
	if next == recovery {
		t.Fatal("recovery code not renewed")
	}
	if _, err := d.Recover(ctx, "teacher@example.org", recovery, "new password 2"); !errors.Is(err, store.ErrAuthFailed) {
		t.Fatalf("used recovery code works again: %v", err)
	}
	e, err := d.Login(ctx, "teacher@example.org", "new password 1", store.ScopeIMAP)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, e, inbox.ID, m.UID); !strings.Contains(got, "parent meeting notes") {
		t.Fatal("data lost after recovery")
	}
	e.Close()
}

func TestDisplayNameSealed(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "t@example.org", "password1")
	if err := d.SetDisplayName(ctx, "t@example.org", "Frau Müller"); err != nil {
		t.Fatal(err)
	}
	name, err := a.DisplayName(ctx)
	if err != nil || name != "Frau Müller" {
		t.Fatalf("display name %q %v", name, err)
	}
}

func TestDeleteAccountLeavesNothing(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "leaver@example.org", "password1")
	keep, _ := User(t, d, "stayer@example.org", "password2")
	big := strings.Repeat("photo of the school musical ", 10000) // > 64 KiB: a blob file
	appendText(t, a, "INBOX", "gallery", big)
	appendText(t, keep, "INBOX", "kept", "still here")
	id := a.ID()
	a.Close()
	if err := d.DeleteAccount(ctx, "leaver@example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Login(ctx, "leaver@example.org", "password1", store.ScopeIMAP); err == nil {
		t.Fatal("deleted account logs in")
	}
	if _, err := os.Stat(filepath.Join(d.Dir(), "users", id)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("user dir remains: %v", err)
	}
	assertNoFileContains(t, d.Dir(), "leaver@example.org", id)
	// The other account is intact.
	inbox, _ := keep.MailboxByName(ctx, "INBOX")
	uids, _ := keep.UIDs(ctx, inbox.ID)
	if len(uids) != 1 || !strings.Contains(readAll(t, keep, inbox.ID, uids[0]), "still here") {
		t.Fatal("other account damaged")
	}
}

// assertNoFileContains walks dir and fails if any file holds any marker.
func assertNoFileContains(t testing.TB, dir string, markers ...string) {
	t.Helper()
	filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range markers {
			if bytes.Contains(b, []byte(m)) {
				t.Errorf("%s contains %q in clear", path, m)
			}
			if bytes.Contains(bytes.ToLower(b), bytes.ToLower([]byte(m))) {
				t.Errorf("%s contains %q (any case) in clear", path, m)
			}
		}
		return nil
	})
}

func TestMarkersNeverInClear(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "marker@example.org", "password1")
	const (
		subject = "MarkerSubjectQuux"
		body    = "MarkerBodyZyzzy"
		mailbox = "MarkerMailboxFrob"
		keyword = "MarkerKeywordBlarg"
		display = "MarkerDisplayWibble"
	)
	if _, err := a.CreateMailbox(ctx, mailbox, ""); err != nil {
		t.Fatal(err)
	}
	m := appendText(t, a, mailbox, subject, body, keyword)
	appendText(t, a, "INBOX", subject+"2", strings.Repeat(body+" ", 20000))
	mb, _ := a.MailboxByName(ctx, mailbox)
	if _, _, err := a.SetFlags(ctx, mb.ID, []uint32{m.UID}, store.FlagsAdd, []string{keyword + "2"}, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.SetDisplayName(ctx, "marker@example.org", display); err != nil {
		t.Fatal(err)
	}
	if _, errs := d.Deliver(ctx, []store.Recipient{{AccountID: a.ID()}}, strings.NewReader("Subject: "+subject+"3\r\n\r\n"+body+"\r\n")); errs != nil {
		t.Fatal(errs)
	}
	a.Close()
	d.Close()
	assertNoFileContains(t, d.Dir(), subject, body, mailbox, keyword, display)
}
