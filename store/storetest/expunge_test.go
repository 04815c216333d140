package storetest

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"kreide/store"
)

// reopenable is a store in a dir of its own that a test can close, change
// underneath (as an older version or an attacker would have left it) and
// open again.
type reopenable struct {
	t   *testing.T
	dir string
	id  string
	d   *store.Directory
	a   *store.Account
}

func newReopenable(t *testing.T) *reopenable {
	r := &reopenable{t: t, dir: t.TempDir()}
	d, err := store.Open(r.dir, Options())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.AddDomain(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	c, err := d.CreateAccount(ctx, "t@example.org", "password1")
	if err != nil {
		t.Fatal(err)
	}
	r.id = c.Account.ID
	d.Close()
	r.open()
	t.Cleanup(r.close)
	return r
}

func (r *reopenable) open() {
	d, err := store.Open(r.dir, Options())
	if err != nil {
		r.t.Fatal(err)
	}
	a, err := d.Login(ctx, "t@example.org", "password1", store.ScopeIMAP)
	if err != nil {
		r.t.Fatal(err)
	}
	r.d, r.a = d, a
}

func (r *reopenable) close() {
	if r.d != nil {
		r.a.Close()
		r.d.Close()
		r.d, r.a = nil, nil
	}
}

// raw closes the store and runs fn on the account's bbolt file.
func (r *reopenable) raw(fn func(tx *bolt.Tx) error) {
	r.t.Helper()
	r.close()
	db, err := bolt.Open(filepath.Join(r.dir, "users", r.id, "store.db"), 0o600, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		r.t.Fatal(err)
	}
	db.Close()
	r.open()
}

func (r *reopenable) mailbox(name string) store.MailboxID {
	r.t.Helper()
	mb, err := r.a.MailboxByName(ctx, name)
	if err != nil {
		r.t.Fatal(err)
	}
	return mb.ID
}

// scanDeleted is the truth: the UIDs whose own flags have \Deleted.
func scanDeleted(t *testing.T, a *store.Account, mbox store.MailboxID) []uint32 {
	t.Helper()
	var out []uint32
	err := a.Messages(ctx, mbox, nil, store.FetchOptions{}, func(m *store.Message) error {
		if m.Has(store.FlagDeleted) {
			out = append(out, m.UID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func checkDeleted(t *testing.T, a *store.Account, mbox store.MailboxID, what string) []uint32 {
	t.Helper()
	want := scanDeleted(t, a, mbox)
	got, err := a.DeletedUIDs(ctx, mbox)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("%s: deleted set %v (%v), flags say %v", what, got, err, want)
	}
	return want
}

func setFlags(t testing.TB, a *store.Account, mbox store.MailboxID, uids []uint32, op store.FlagOp, flags ...string) {
	t.Helper()
	if _, _, err := a.SetFlags(ctx, mbox, uids, op, flags, 0); err != nil {
		t.Fatal(err)
	}
}

// expungeDeleted runs ExpungeDeleted and checks that it removed exactly
// the candidates with \Deleted and nothing else.
func expungeDeleted(t *testing.T, a *store.Account, mbox store.MailboxID, candidates []uint32, what string) {
	t.Helper()
	before, _ := a.UIDs(ctx, mbox)
	want := scanDeleted(t, a, mbox)
	if candidates != nil {
		want = slices.DeleteFunc(want, func(u uint32) bool { return !slices.Contains(candidates, u) })
	}
	got, err := a.ExpungeDeleted(ctx, mbox, candidates)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("%s: expunged %v (%v), want %v", what, got, err, want)
	}
	after, _ := a.UIDs(ctx, mbox)
	if left := slices.DeleteFunc(slices.Clone(before), func(u uint32) bool { return slices.Contains(want, u) }); !slices.Equal(after, left) {
		t.Fatalf("%s: left %v, want %v", what, after, left)
	}
	checkDeleted(t, a, mbox, what+": after")
}

// TestExpungeRemovesExactlyDeleted: after a mix of flag changes, appends,
// copies, moves, expunges and reopens, EXPUNGE removes exactly the
// messages with \Deleted, from a per-mailbox set it never scans for.
func TestExpungeRemovesExactlyDeleted(t *testing.T) {
	r := newReopenable(t)
	inbox, trash, archive := r.mailbox("INBOX"), r.mailbox("Trash"), r.mailbox("Archive")
	for i := range 40 {
		var flags []string
		switch {
		case i%5 == 0:
			flags = []string{`\Deleted`, `\Seen`}
		case i%3 == 0:
			flags = []string{`\Seen`}
		}
		appendText(t, r.a, "INBOX", fmt.Sprintf("m%d", i), "body", flags...)
	}
	checkDeleted(t, r.a, inbox, "append")
	setFlags(t, r.a, inbox, []uint32{3, 7, 11, 12}, store.FlagsAdd, `\Deleted`)
	setFlags(t, r.a, inbox, []uint32{6, 11, 99}, store.FlagsRemove, `\Deleted`)
	setFlags(t, r.a, inbox, []uint32{16}, store.FlagsReplace, `\Seen`)
	setFlags(t, r.a, inbox, []uint32{17, 18}, store.FlagsReplace, `\Flagged`, `\deleted`)
	setFlags(t, r.a, inbox, []uint32{19}, store.FlagsAdd, `$Label1`)  // no \Deleted change
	setFlags(t, r.a, inbox, []uint32{12}, store.FlagsAdd, `\Deleted`) // already set
	checkDeleted(t, r.a, inbox, "store")

	if _, err := r.a.Copy(ctx, inbox, []uint32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, archive); err != nil {
		t.Fatal(err)
	}
	checkDeleted(t, r.a, archive, "copy")
	if _, err := r.a.Move(ctx, inbox, []uint32{20, 21, 22, 23, 24, 25, 26}, trash); err != nil {
		t.Fatal(err)
	}
	checkDeleted(t, r.a, inbox, "move: source")
	checkDeleted(t, r.a, trash, "move: destination")
	if _, err := r.a.Expunge(ctx, inbox, []uint32{1, 2}); err != nil { // one with \Deleted, one without
		t.Fatal(err)
	}
	checkDeleted(t, r.a, inbox, "expunge by UID")

	r.close()
	r.open()
	for _, mb := range []store.MailboxID{inbox, trash, archive} {
		checkDeleted(t, r.a, mb, "reopen")
	}
	setFlags(t, r.a, trash, []uint32{1, 2}, store.FlagsAdd, `\Deleted`)
	setFlags(t, r.a, archive, []uint32{1, 6}, store.FlagsRemove, `\Deleted`)

	// Data from before the deleted sets: built from the flags on first use.
	r.raw(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("deleted")) == nil {
			return fmt.Errorf("no deleted sets were written")
		}
		return tx.DeleteBucket([]byte("deleted"))
	})
	checkDeleted(t, r.a, inbox, "without record")
	setFlags(t, r.a, inbox, []uint32{30}, store.FlagsAdd, `\Deleted`)
	checkDeleted(t, r.a, inbox, "record rebuilt")

	// UID EXPUNGE: only candidates go.
	expungeDeleted(t, r.a, inbox, []uint32{30, 12, 13, 14}, "uid expunge")
	expungeDeleted(t, r.a, inbox, nil, "expunge")
	expungeDeleted(t, r.a, trash, nil, "expunge trash")
	r.close()
	r.open()
	expungeDeleted(t, r.a, archive, nil, "expunge archive after reopen")
	expungeDeleted(t, r.a, archive, nil, "expunge again")
	for _, mb := range []store.MailboxID{inbox, trash, archive} {
		if d := scanDeleted(t, r.a, mb); len(d) != 0 {
			t.Fatalf("left with \\Deleted: %v", d)
		}
	}

	// Deleting a mailbox drops its set; a new one starts empty.
	mb, err := r.a.CreateMailbox(ctx, "Projekt", "")
	if err != nil {
		t.Fatal(err)
	}
	appendText(t, r.a, "Projekt", "p1", "x", `\Deleted`)
	if err := r.a.DeleteMailbox(ctx, mb.ID); err != nil {
		t.Fatal(err)
	}
	mb, _ = r.a.CreateMailbox(ctx, "Projekt", "")
	appendText(t, r.a, "Projekt", "p2", "x")
	checkDeleted(t, r.a, mb.ID, "recreated")
}

// TestExpungeDeletedSetIsOnlyAHint: a deleted set rolled back to an older
// version (or otherwise wrong) never expunges a message without \Deleted.
func TestExpungeDeletedSetIsOnlyAHint(t *testing.T) {
	r := newReopenable(t)
	inbox := r.mailbox("INBOX")
	for i := range 10 {
		appendText(t, r.a, "INBOX", fmt.Sprintf("m%d", i), "body", `\Deleted`)
	}
	var old []byte
	r.raw(func(tx *bolt.Tx) error {
		old = slices.Clone(tx.Bucket([]byte("deleted")).Get([]byte{0, 0, 0, byte(inbox)}))
		return nil
	})
	if old == nil || inbox > 255 {
		t.Fatalf("no deleted set for mailbox %d", inbox)
	}
	setFlags(t, r.a, inbox, []uint32{1, 2, 3, 4, 5, 6, 7, 8}, store.FlagsRemove, `\Deleted`)
	r.raw(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("deleted")).Put([]byte{0, 0, 0, byte(inbox)}, old)
	})
	got, err := r.a.ExpungeDeleted(ctx, inbox, nil)
	if err != nil || !slices.Equal(got, []uint32{9, 10}) {
		t.Fatalf("expunged %v %v", got, err)
	}
	checkDeleted(t, r.a, inbox, "repaired")
	// A record that does not open is rebuilt from the flags.
	setFlags(t, r.a, inbox, []uint32{3}, store.FlagsAdd, `\Deleted`)
	r.raw(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("deleted")).Put([]byte{0, 0, 0, byte(inbox)}, []byte("garbage"))
	})
	checkDeleted(t, r.a, inbox, "garbage")
	setFlags(t, r.a, inbox, []uint32{4}, store.FlagsAdd, `\Deleted`)
	expungeDeleted(t, r.a, inbox, nil, "after garbage")
}

// TestHeaderCache: the header block FETCH BODY[HEADER...] uses comes from a
// sealed cache beside the structure, byte for byte what the content holds;
// messages without it (too long, stored before it) get the structure to
// read it from the content instead.
func TestHeaderCache(t *testing.T) {
	r := newReopenable(t)
	inbox, trash := r.mailbox("INBOX"), r.mailbox("Trash")
	raws := []string{
		"From: a@example.org\r\nSubject: plain\r\n\r\nbody\r\n",
		"From: a@example.org\nSubject: bare LF\n\nbody\n",
		"From: a@example.org\r\nSubject: no body\r\n",
		"\r\nonly a body\r\n",
		"Subject: long\r\nX-Pad: " + strings.Repeat("a", 64<<10-40) + "\r\n\r\nbody\r\n",
		"Subject: too long\r\nX-Pad: " + strings.Repeat("a", 64<<10) + "\r\n\r\nbody\r\n",
		"Subject: big body\r\n\r\n" + strings.Repeat("Liebe Eltern, ", 20000),
	}
	for _, raw := range raws {
		if _, err := r.a.Append(ctx, inbox, strings.NewReader(raw), nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.d.Deliver(ctx, []store.Recipient{{AccountID: r.id}}, strings.NewReader(raws[0])); err != nil {
		t.Fatal(err)
	}
	check := func(mbox store.MailboxID, uids []uint32, what string, cached func(i int) bool) {
		t.Helper()
		var ms []store.Message
		err := r.a.Messages(ctx, mbox, uids, store.FetchOptions{Header: true}, func(m *store.Message) error {
			ms = append(ms, *m)
			return nil
		})
		if err != nil || len(ms) != len(uids) {
			t.Fatalf("%s: %d messages, %v", what, len(ms), err)
		}
		for i, m := range ms {
			content := readAll(t, r.a, mbox, m.UID)
			switch {
			case m.Header != nil:
				if m.Structure != nil {
					t.Errorf("%s %d: structure decrypted beside the cached header", what, i)
				}
				var st *store.Message
				r.a.Messages(ctx, mbox, []uint32{m.UID}, store.FetchOptions{Structure: true}, func(m *store.Message) error { st = m; return nil })
				if string(m.Header) != content[:st.Structure.HeaderSize] {
					t.Errorf("%s %d: cached header %q differs from the content's", what, i, m.Header)
				}
			case m.Structure == nil:
				t.Errorf("%s %d: neither header nor structure", what, i)
			}
			if cached != nil && (m.Header != nil) != cached(i) {
				t.Errorf("%s %d: cached %v", what, i, m.Header != nil)
			}
		}
	}
	all := []uint32{1, 2, 3, 4, 5, 6, 7, 8}
	cached := func(i int) bool { return i != 5 } // too long
	check(inbox, all, "append and delivery", cached)
	var flagsOnly *store.Message
	r.a.Messages(ctx, inbox, []uint32{1}, store.FetchOptions{}, func(m *store.Message) error { flagsOnly = m; return nil })
	if flagsOnly.Header != nil || flagsOnly.Structure != nil {
		t.Fatal("a flags-only read decrypted more")
	}

	if _, err := r.a.Copy(ctx, inbox, all, trash); err != nil {
		t.Fatal(err)
	}
	if _, err := r.a.Expunge(ctx, inbox, []uint32{1, 2}); err != nil {
		t.Fatal(err)
	}
	check(trash, all, "copy", cached)
	if _, err := r.a.Move(ctx, trash, []uint32{1, 2, 3}, inbox); err != nil {
		t.Fatal(err)
	}
	check(inbox, []uint32{9, 10, 11}, "move", func(int) bool { return true })

	// Stored before the cache: the structure instead.
	r.raw(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("headers")) })
	check(inbox, []uint32{3, 4, 9, 10}, "legacy", func(int) bool { return false })
	r.close()
	assertNoFileContains(t, r.dir, "bare LF", "no body", "only a body")
}

// BenchmarkExpunge10k: EXPUNGE in a mailbox of 10,000 messages (all \Seen,
// so every one has sealed flags) of which one has \Deleted. "scan" is how
// IMAP found them before the deleted sets (open every message's flags),
// "set" is ExpungeDeleted. Setting \Deleted is not timed.
func BenchmarkExpunge10k(b *testing.B) {
	d := Open(b)
	a, _ := User(b, d, "t@example.org", "password1")
	inbox, _ := a.MailboxByName(ctx, "INBOX")
	add := func(i int) {
		msg := fmt.Sprintf("From: s%d@example.org\r\nSubject: Message number %d\r\n\r\nbody\r\n", i, i)
		if _, err := a.Append(ctx, inbox.ID, strings.NewReader(msg), []string{`\Seen`}, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < 10000; i += 8 {
				add(i)
			}
		})
	}
	wg.Wait()
	find := func(uids []uint32) []uint32 {
		var deleted []uint32
		for chunk := range slices.Chunk(uids, 512) {
			a.Messages(ctx, inbox.ID, chunk, store.FetchOptions{}, func(m *store.Message) error {
				if m.Has(store.FlagDeleted) {
					deleted = append(deleted, m.UID)
				}
				return nil
			})
		}
		return deleted
	}
	scan := func(uids []uint32) []uint32 {
		done, err := a.Expunge(ctx, inbox.ID, find(uids))
		if err != nil {
			b.Fatal(err)
		}
		return done
	}
	set := func(uids []uint32) []uint32 {
		done, err := a.ExpungeDeleted(ctx, inbox.ID, uids)
		if err != nil {
			b.Fatal(err)
		}
		return done
	}
	for _, bc := range []struct {
		name    string
		expunge func([]uint32) []uint32
	}{{"scan", scan}, {"set", set}} {
		b.Run(bc.name, func(b *testing.B) {
			for i := range b.N {
				b.StopTimer()
				uids, _ := a.UIDs(ctx, inbox.ID)
				victim := uids[i*7919%len(uids)]
				setFlags(b, a, inbox.ID, []uint32{victim}, store.FlagsAdd, store.FlagDeleted)
				b.StartTimer()
				if done := bc.expunge(uids); !slices.Equal(done, []uint32{victim}) {
					b.Fatalf("expunged %v, want %d", done, victim)
				}
				b.StopTimer()
				add(10000 + i)
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/expunge")
		})
	}
	// Finding the \Deleted message alone, without the commit (an fsync)
	// that dominates "set".
	uids, _ := a.UIDs(ctx, inbox.ID)
	setFlags(b, a, inbox.ID, uids[:1], store.FlagsAdd, store.FlagDeleted)
	for _, bc := range []struct {
		name string
		find func() []uint32
	}{
		{"find-scan", func() []uint32 { return find(uids) }},
		{"find-set", func() []uint32 { d, _ := a.DeletedUIDs(ctx, inbox.ID); return d }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for range b.N {
				if got := bc.find(); !slices.Equal(got, uids[:1]) {
					b.Fatalf("found %v", got)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/find")
		})
	}
}
