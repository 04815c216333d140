package storetest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"kreide/store"
)

func TestDefaultMailboxes(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "t@example.org", "password1")
	mbs, err := a.Mailboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, mb := range mbs {
		got[mb.Name] = mb.Role
		if !mb.Subscribed || mb.UIDNext != 1 || mb.UIDValidity == 0 {
			t.Errorf("%+v", mb)
		}
	}
	want := map[string]string{"INBOX": "inbox", "Drafts": "drafts", "Sent": "sent", "Trash": "trash", "Junk": "junk", "Archive": "archive"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v want %v", got, want)
	}
}

func TestMailboxOperations(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "t@example.org", "password1")
	mb, err := a.CreateMailbox(ctx, "Klasse 5b/Elternabend", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateMailbox(ctx, "Klasse 5b/Elternabend", ""); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	if _, err := a.CreateMailbox(ctx, "inbox", ""); !errors.Is(err, store.ErrExists) {
		t.Fatalf("INBOX is case-insensitive: %v", err)
	}
	m := appendText(t, a, "Klasse 5b/Elternabend", "s", "b")
	if err := a.RenameMailbox(ctx, mb.ID, "Archiv/2026"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.MailboxByName(ctx, "Klasse 5b/Elternabend"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old name: %v", err)
	}
	got, err := a.MailboxByName(ctx, "Archiv/2026")
	if err != nil || got.ID != mb.ID || got.Messages != 1 || got.UIDValidity != mb.UIDValidity {
		t.Fatalf("renamed: %+v %v", got, err)
	}
	if err := a.SetSubscribed(ctx, mb.ID, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Mailbox(ctx, mb.ID); got.Subscribed {
		t.Fatal("still subscribed")
	}
	if err := a.DeleteMailbox(ctx, mb.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.OpenMessage(ctx, mb.ID, m.UID); err == nil {
		t.Fatal("message of deleted mailbox readable")
	}
	if used, _, _ := a.Used(ctx); used != 0 {
		t.Fatalf("usage after delete: %d", used)
	}
	again, err := a.CreateMailbox(ctx, "Archiv/2026", "")
	if err != nil || again.UIDValidity == mb.UIDValidity {
		t.Fatalf("recreated mailbox must get a new UIDVALIDITY: %+v %v", again, err)
	}
	inbox, _ := a.MailboxByName(ctx, "INBOX")
	if err := a.DeleteMailbox(ctx, inbox.ID); !errors.Is(err, store.ErrPermanentInbox) {
		t.Fatalf("delete INBOX: %v", err)
	}
	// Renaming INBOX moves its messages and leaves it empty.
	appendText(t, a, "INBOX", "old", "old mail")
	if err := a.RenameMailbox(ctx, inbox.ID, "Old Inbox"); err != nil {
		t.Fatal(err)
	}
	inbox, _ = a.Mailbox(ctx, inbox.ID)
	old, _ := a.MailboxByName(ctx, "Old Inbox")
	if inbox.Messages != 0 || old.Messages != 1 || inbox.Name != "INBOX" {
		t.Fatalf("INBOX rename: %+v %+v", inbox, old)
	}
}

func TestMessages(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "t@example.org", "password1")
	inbox, _ := a.MailboxByName(ctx, "INBOX")
	trash, _ := a.MailboxByName(ctx, "Trash")
	date := time.Date(2026, 3, 1, 8, 30, 0, 0, time.FixedZone("", 3600))
	raw := "From: =?ISO-8859-1?Q?J=FCrgen?= <j@example.org>\r\nSubject: Klassenfahrt\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nNotfallliste anbei\r\n--XX\r\nContent-Type: application/octet-stream\r\n\r\n" + strings.Repeat("0123456789", 20000) + "\r\n--XX--\r\n"
	m, err := a.Append(ctx, inbox.ID, strings.NewReader(raw), []string{"\\seen", "$Important"}, date)
	if err != nil {
		t.Fatal(err)
	}
	if m.UID != 1 || m.Size != int64(len(raw)) || !m.InternalDate.Equal(date) || !slices.Equal(m.Flags, []string{"$Important", `\Seen`}) {
		t.Fatalf("appended %+v", m)
	}
	m2 := appendText(t, a, "INBOX", "second", "hello")
	// Read back whole, and a partial range that crosses a chunk boundary.
	if got := readAll(t, a, inbox.ID, m.UID); got != raw {
		t.Fatal("content differs")
	}
	r, err := a.OpenMessage(ctx, inbox.ID, m.UID)
	if err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 1000)
	if _, err := r.ReadAt(part, 65000); err != nil || string(part) != raw[65000:66000] {
		t.Fatalf("partial read: %v", err)
	}
	r.Close()
	// Metadata and cached structure.
	var seen []store.Message
	err = a.Messages(ctx, inbox.ID, nil, store.FetchOptions{Structure: true}, func(m *store.Message) error {
		seen = append(seen, *m)
		return nil
	})
	if err != nil || len(seen) != 2 {
		t.Fatalf("messages: %v %d", err, len(seen))
	}
	if seen[0].Structure.Envelope.Subject != "Klassenfahrt" || seen[0].Structure.Envelope.From[0].Name != "Jürgen" {
		t.Fatalf("envelope %+v", seen[0].Structure.Envelope)
	}
	if len(seen[0].Structure.Root.Children) != 2 {
		t.Fatalf("structure %+v", seen[0].Structure.Root)
	}
	var subjects []string
	a.Messages(ctx, inbox.ID, nil, store.FetchOptions{Envelope: true}, func(m *store.Message) error {
		subjects = append(subjects, m.Envelope.Subject)
		return nil
	})
	if !slices.Equal(subjects, []string{"Klassenfahrt", "second"}) {
		t.Fatalf("envelope-only fetch: %q", subjects)
	}
	mb, _ := a.Mailbox(ctx, inbox.ID)
	if mb.Messages != 2 || mb.Unseen != 1 || mb.UIDNext != 3 || mb.Size != int64(len(raw))+m2.Size {
		t.Fatalf("counts %+v", mb)
	}
	// Flags, with CONDSTORE's unchangedsince.
	upd, failed, err := a.SetFlags(ctx, inbox.ID, []uint32{m2.UID}, store.FlagsAdd, []string{`\Seen`, `\Flagged`}, 0)
	if err != nil || len(failed) != 0 || len(upd) != 1 || !upd[0].Has(`\flagged`) || upd[0].ModSeq <= m2.ModSeq {
		t.Fatalf("store: %+v %v %v", upd, failed, err)
	}
	_, failed, _ = a.SetFlags(ctx, inbox.ID, []uint32{m2.UID}, store.FlagsRemove, []string{`\Flagged`}, m2.ModSeq)
	if !slices.Equal(failed, []uint32{m2.UID}) {
		t.Fatalf("unchangedsince not honoured: %v", failed)
	}
	if mb, _ := a.Mailbox(ctx, inbox.ID); mb.Unseen != 0 || mb.HighestModSeq != upd[0].ModSeq {
		t.Fatalf("after store %+v", mb)
	}
	// Copy keeps flags and content; move removes from the source.
	pairs, err := a.Copy(ctx, inbox.ID, []uint32{m.UID, 99}, trash.ID)
	if err != nil || len(pairs) != 1 || pairs[0] != (store.UIDPair{Src: 1, Dst: 1}) {
		t.Fatalf("copy %v %v", pairs, err)
	}
	if got := readAll(t, a, trash.ID, 1); got != raw {
		t.Fatal("copy differs")
	}
	pairs, err = a.Move(ctx, inbox.ID, []uint32{m2.UID}, trash.ID)
	if err != nil || len(pairs) != 1 || pairs[0].Dst != 2 {
		t.Fatalf("move %v %v", pairs, err)
	}
	uids, _ := a.UIDs(ctx, inbox.ID)
	if !slices.Equal(uids, []uint32{1}) {
		t.Fatalf("inbox after move %v", uids)
	}
	var flags []string
	a.Messages(ctx, trash.ID, []uint32{2}, store.FetchOptions{}, func(m *store.Message) error { flags = m.Flags; return nil })
	if !slices.Equal(flags, []string{`\Flagged`, `\Seen`}) {
		t.Fatalf("flags after move %v", flags)
	}
	// Expunge removes content; expunging the original keeps the copy.
	gone, err := a.Expunge(ctx, inbox.ID, []uint32{1, 5})
	if err != nil || !slices.Equal(gone, []uint32{1}) {
		t.Fatalf("expunge %v %v", gone, err)
	}
	if _, err := a.OpenMessage(ctx, inbox.ID, 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expunged readable: %v", err)
	}
	if got := readAll(t, a, trash.ID, 1); got != raw {
		t.Fatal("copy lost when the original was expunged")
	}
	used, _, _ := a.Used(ctx)
	if used != int64(len(raw))+m2.Size {
		t.Fatalf("usage %d", used)
	}
}

func TestQuota(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "t@example.org", "password1")
	if err := d.SetQuota(ctx, "t@example.org", 1000); err != nil {
		t.Fatal(err)
	}
	inbox, _ := a.MailboxByName(ctx, "INBOX")
	if _, err := a.Append(ctx, inbox.ID, strings.NewReader(strings.Repeat("x", 600)), nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(ctx, inbox.ID, strings.NewReader(strings.Repeat("x", 600)), nil, time.Time{}); !errors.Is(err, store.ErrOverQuota) {
		t.Fatalf("over quota append: %v", err)
	}
	trash, _ := a.MailboxByName(ctx, "Trash")
	if _, err := a.Copy(ctx, inbox.ID, []uint32{1}, trash.ID); !errors.Is(err, store.ErrOverQuota) {
		t.Fatalf("over quota copy: %v", err)
	}
	errs, err := d.Deliver(ctx, []store.Recipient{{AccountID: a.ID()}}, strings.NewReader(strings.Repeat("y", 600)))
	if err == nil || !errors.Is(errs[0], store.ErrOverQuota) {
		t.Fatalf("over quota delivery: %v %v", errs, err)
	}
	if mb, _ := a.Mailbox(ctx, inbox.ID); mb.Messages != 1 {
		t.Fatalf("refused writes changed the mailbox: %+v", mb)
	}
	if _, err := a.Move(ctx, inbox.ID, []uint32{1}, trash.ID); err != nil {
		t.Fatalf("move needs no extra quota: %v", err)
	}
}

func TestLockedDelivery(t *testing.T) {
	d := Open(t)
	ids := map[string]string{}
	for _, u := range []string{"a@example.org", "b@example.org"} {
		c, err := d.CreateAccount(ctx, u, "password1")
		if err != nil {
			t.Fatal(err)
		}
		ids[u] = c.Account.ID
	}
	msg := "Subject: Elternbrief\r\n\r\n" + strings.Repeat("Liebe Eltern, ", 10000) + "\r\n"
	errs, err := d.Deliver(ctx, []store.Recipient{{AccountID: ids["a@example.org"]}, {AccountID: ids["b@example.org"], Junk: true}}, strings.NewReader(msg))
	if err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatal(err, errs)
	}
	for u, mailbox := range map[string]string{"a@example.org": "INBOX", "b@example.org": "Junk"} {
		a, err := d.Login(ctx, u, "password1", store.ScopeIMAP)
		if err != nil {
			t.Fatal(err)
		}
		mb, _ := a.MailboxByName(ctx, mailbox)
		if mb.Messages != 1 || mb.Unseen != 1 {
			t.Fatalf("%s %s: %+v", u, mailbox, mb)
		}
		if got := readAll(t, a, mb.ID, 1); got != msg {
			t.Fatalf("%s: content differs", u)
		}
		a.Close()
	}
}

func TestConcurrentDeliveriesAndWatch(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "t@example.org", "password1")
	w := a.Watch()
	defer w.Close()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := d.Deliver(ctx, []store.Recipient{{AccountID: a.ID()}}, strings.NewReader(fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i)))
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	select {
	case <-w.C:
	case <-time.After(time.Second):
		t.Fatal("watcher not woken")
	}
	inbox, _ := a.MailboxByName(ctx, "INBOX")
	uids, _ := a.UIDs(ctx, inbox.ID)
	if len(uids) != 20 || uids[19] != 20 {
		t.Fatalf("uids %v", uids)
	}
	changes, cur, err := a.Changes(ctx, 0)
	if err != nil || cur == 0 {
		t.Fatal(err)
	}
	added := 0
	for i, c := range changes {
		if i > 0 && c.ModSeq <= changes[i-1].ModSeq {
			t.Fatal("change log not monotonic")
		}
		if c.Kind == store.ChangeMessageAdded && c.Mailbox == inbox.ID {
			added++
		}
	}
	if added != 20 {
		t.Fatalf("%d additions logged", added)
	}
}

func TestTamperedContentFails(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "t@example.org", "password1")
	big := strings.Repeat("class trip emergency list ", 10000)
	m := appendText(t, a, "INBOX", "list", big)
	inbox, _ := a.MailboxByName(ctx, "INBOX")
	var files []string
	filepath.Walk(filepath.Join(d.Dir(), "users", a.ID(), "blobs"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 1 {
		t.Fatalf("blob files %v", files)
	}
	orig, _ := os.ReadFile(files[0])
	for _, off := range []int{0, 17, 70000, len(orig) - 1} {
		bad := slices.Clone(orig)
		bad[off] ^= 0x40
		os.WriteFile(files[0], bad, 0o600)
		r, err := a.OpenMessage(ctx, inbox.ID, m.UID)
		if err == nil {
			_, err = io.ReadAll(r)
			r.Close()
		}
		if err == nil {
			t.Fatalf("flipped byte %d read without error", off)
		}
	}
	os.WriteFile(files[0], orig[:len(orig)-100], 0o600)
	if r, err := a.OpenMessage(ctx, inbox.ID, m.UID); err == nil {
		_, err = io.ReadAll(r)
		if err == nil {
			t.Fatal("truncated blob read without error")
		}
	}
}

// TestEveryFlagChangeLogged: a STORE on several messages logs each of them,
// so other sessions (IMAP IDLE) learn of every change.
func TestEveryFlagChangeLogged(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "t@example.org", "password1")
	inbox, _ := a.MailboxByName(ctx, "INBOX")
	for range 3 {
		appendText(t, a, "INBOX", "s", "b")
	}
	_, before, _ := a.Changes(ctx, 0)
	if _, _, err := a.SetFlags(ctx, inbox.ID, []uint32{1, 2, 3}, store.FlagsAdd, []string{`\Seen`}, 0); err != nil {
		t.Fatal(err)
	}
	changes, _, _ := a.Changes(ctx, before)
	var uids []uint32
	for _, c := range changes {
		if c.Kind == store.ChangeMessageFlags {
			uids = append(uids, c.UID)
		}
	}
	if !slices.Equal(uids, []uint32{1, 2, 3}) {
		t.Fatalf("flag changes logged for %v, want 1 2 3", uids)
	}
}
