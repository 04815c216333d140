package imap

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"kreide/store"
)

func hasLine(lines []string, prefix string) bool {
	return slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, prefix) })
}

// TestTwoSessions: what one session does, the other sees, by the rules of
// RFC 9051 7.5.1: EXISTS and FETCH FLAGS after any command, EXPUNGE never
// after FETCH, STORE or SEARCH by sequence number.
func TestTwoSessions(t *testing.T) {
	e := newEnv(t)
	a := e.selectInbox(nil)
	appendN(t, a, "INBOX", 3)
	b := e.rawLogin()
	u := b.ok("SELECT INBOX")
	if !slices.Contains(u, "* 3 EXISTS") {
		t.Fatalf("SELECT: %q", u)
	}

	appendMsg(t, a, "INBOX", simpleMessage("neu", "x"), nil)
	if u := b.ok("NOOP"); !slices.Contains(u, "* 4 EXISTS") {
		t.Errorf("after A's APPEND, B's NOOP: %q", u)
	}

	a.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close()
	if u := b.ok("NOOP"); !slices.Contains(u, `* 2 FETCH (UID 2 FLAGS (\Flagged))`) {
		t.Errorf("after A's STORE, B's NOOP: %q", u)
	}
	if u := b.ok("NOOP"); len(u) != 0 {
		t.Errorf("second NOOP repeats: %q", u)
	}
	// B's own STORE is answered once, not echoed later.
	b.ok(`STORE 3 +FLAGS (\Seen)`)
	if u := b.ok("NOOP"); len(u) != 0 {
		t.Errorf("own STORE echoed: %q", u)
	}

	// A expunges message 1. B keeps its sequence numbers through FETCH,
	// STORE and SEARCH; the EXPUNGE comes after the next NOOP.
	a.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
	if err := a.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	u = b.ok("FETCH 1:* (UID)")
	if hasLine(u, "* 1 EXPUNGE") || !slices.Contains(u, "* 4 FETCH (UID 4)") {
		t.Errorf("FETCH during pending expunge: %q", u)
	}
	if u := b.ok(`STORE 4 +FLAGS (\Answered)`); hasLine(u, "* 1 EXPUNGE") || !hasLine(u, "* 4 FETCH") {
		t.Errorf("STORE during pending expunge: %q", u)
	}
	if u := b.ok("SEARCH ALL"); hasLine(u, "* 1 EXPUNGE") || !slices.Contains(u, "* SEARCH 2 3 4") {
		t.Errorf("SEARCH during pending expunge: %q", u)
	}
	u = b.ok("NOOP")
	if !slices.Equal(u, []string{"* 1 EXPUNGE"}) {
		t.Errorf("NOOP after A's EXPUNGE: %q", u)
	}
	u = b.ok("FETCH 1:* (UID)")
	if !slices.Equal(u, []string{"* 1 FETCH (UID 2)", "* 2 FETCH (UID 3)", "* 3 FETCH (UID 4)"}) {
		t.Errorf("FETCH after EXPUNGE: %q", u)
	}

	// UID commands may carry EXPUNGE (RFC 9051 7.5.1).
	a.Store(imap.UIDSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
	a.Expunge().Close()
	u = b.ok("UID FETCH 1:* (FLAGS)")
	if !slices.Contains(u, "* 2 EXPUNGE") {
		t.Errorf("UID FETCH after A's EXPUNGE: %q", u)
	}

	// A moves a message away; B sees it go.
	if _, err := a.Move(imap.UIDSetNum(4), "Archive").Wait(); err != nil {
		t.Fatal(err)
	}
	if u := b.ok("NOOP"); !slices.Equal(u, []string{"* 2 EXPUNGE"}) {
		t.Errorf("after A's MOVE: %q", u)
	}
	if u := b.ok("UID SEARCH ALL"); !slices.Equal(u, []string{"* SEARCH 2"}) {
		t.Errorf("B's view at the end: %q", u)
	}
}

// TestIdle: a message delivered while a client IDLEs shows up within a
// second, and so do other sessions' flag changes and expunges.
func TestIdle(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var exists []uint32
	var expunged []uint32
	var flags []*imapclient.FetchMessageData
	update := make(chan struct{}, 10)
	c := e.selectInbox(&imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				mu.Lock()
				exists = append(exists, *d.NumMessages)
				mu.Unlock()
				update <- struct{}{}
			}
		},
		Expunge: func(seq uint32) {
			mu.Lock()
			expunged = append(expunged, seq)
			mu.Unlock()
			update <- struct{}{}
		},
		Fetch: func(m *imapclient.FetchMessageData) {
			mu.Lock()
			flags = append(flags, m)
			mu.Unlock()
			update <- struct{}{}
		},
	}})
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)

	msg := simpleMessage("Zugestellt", "Per SMTP angekommen.")
	if _, err := e.dir.Deliver(ctx, []store.Recipient{{AccountID: e.acct.ID()}}, bytes.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	select {
	case <-update:
		t.Logf("delivery announced %v after Deliver returned", time.Since(start))
	case <-time.After(time.Second):
		t.Fatal("no EXISTS within a second of delivery")
	}
	mu.Lock()
	if !slices.Equal(exists, []uint32{1}) {
		t.Errorf("EXISTS %v", exists)
	}
	mu.Unlock()

	other := e.selectInbox(nil)
	other.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
	select {
	case <-update:
	case <-time.After(time.Second):
		t.Fatal("no FETCH FLAGS within a second")
	}
	other.Expunge().Close()
	select {
	case <-update:
	case <-time.After(time.Second):
		t.Fatal("no EXPUNGE within a second")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(expunged, []uint32{1}) || len(flags) != 1 || flags[0].SeqNum != 1 {
		t.Errorf("expunged %v, flag updates %d", expunged, len(flags))
	}
}

// TestDeliveredMessageReadable: a message delivered through the public-key
// path reads like any other.
func TestDeliveredMessageReadable(t *testing.T) {
	e := newEnv(t)
	raw := fixture(t, "nested.eml")
	if _, err := e.dir.Deliver(ctx, []store.Recipient{{AccountID: e.acct.ID()}}, bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	c := e.selectInbox(nil)
	m := fetchOne(t, c, 1, &imap.FetchOptions{Envelope: true, Flags: true})
	if m.Envelope.Subject != "Wochenplan für die 7b" || len(m.Flags) != 0 {
		t.Errorf("delivered: %+v", m)
	}
	if got := body(t, c, 1, &imap.FetchItemBodySection{}); !bytes.Equal(got, raw) {
		t.Error("delivered BODY[] differs")
	}
}

func TestSelectedMailboxDeleted(t *testing.T) {
	e := newEnv(t)
	a := e.login(nil)
	a.Create("Projekt", nil).Wait()
	appendN(t, a, "Projekt", 2)
	b := e.rawLogin()
	b.ok("SELECT Projekt")
	if err := a.Delete("Projekt").Wait(); err != nil {
		t.Fatal(err)
	}
	u := b.ok("NOOP")
	if !slices.Equal(u, []string{"* 1 EXPUNGE", "* 1 EXPUNGE"}) {
		t.Errorf("after DELETE of the selected mailbox: %q", u)
	}
	if _, done := b.cmd(`STORE 1 +FLAGS (\Seen)`); !strings.HasPrefix(done, "BAD") {
		t.Errorf("STORE in the deleted mailbox: %q", done)
	}
}

func TestGuardRecovers(t *testing.T) {
	e := newEnv(t)
	s := &session{srv: e.srv}
	err := func() (err error) {
		defer s.guard("TEST", time.Now(), &err)
		panic("boom")
	}()
	if imapCode(err) != imap.ResponseCodeServerBug {
		t.Fatalf("guard: %v", err)
	}
}
