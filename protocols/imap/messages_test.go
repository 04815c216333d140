package imap

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

func appendN(t *testing.T, c *imapclient.Client, mailbox string, n int) {
	t.Helper()
	for i := range n {
		appendMsg(t, c, mailbox, simpleMessage(fmt.Sprintf("Nachricht %d", i+1), "Text"), nil)
	}
}

func flagsOf(t *testing.T, c *imapclient.Client, set imap.NumSet) map[imap.UID][]imap.Flag {
	t.Helper()
	msgs, err := c.Fetch(set, &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	out := map[imap.UID][]imap.Flag{}
	for _, m := range msgs {
		out[m.UID] = m.Flags
	}
	return out
}

func TestStoreCopyMoveExpunge(t *testing.T) {
	e := newEnv(t)
	c := e.selectInbox(nil)
	appendN(t, c, "INBOX", 5)

	// STORE answers with the new flags (and UID for UID STORE).
	msgs, err := c.Store(imap.SeqSetNum(1, 2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen, "$Erledigt"}}, nil).Collect()
	if err != nil || len(msgs) != 2 || !slices.Contains(msgs[0].Flags, "$Erledigt") || !slices.Contains(msgs[1].Flags, imap.FlagSeen) {
		t.Fatalf("STORE +FLAGS: %+v, %v", msgs, err)
	}
	msgs, err = c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsDel, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Collect()
	if err != nil || len(msgs) != 0 {
		t.Fatalf("UID STORE -FLAGS.SILENT answered %+v, %v", msgs, err)
	}
	if err := c.Store(imap.SeqSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsSet, Flags: []imap.Flag{imap.FlagDraft, `\Recent`}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	flags := flagsOf(t, c, imap.SeqSet{{Start: 1, Stop: 0}})
	want := map[imap.UID][]imap.Flag{1: {"$Erledigt", imap.FlagSeen}, 2: {"$Erledigt"}, 3: {imap.FlagDraft}, 4: {}, 5: {}}
	for uid, w := range want {
		if !sameFlags(flags[uid], w) {
			t.Errorf("UID %d flags %v, want %v", uid, flags[uid], w)
		}
	}

	// COPY with COPYUID; flags travel along.
	archive, err := e.acct.MailboxByName(ctx, "Archive")
	if err != nil {
		t.Fatal(err)
	}
	cd, err := c.Copy(imap.SeqSetNum(1, 2), "Archive").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if cd.UIDValidity != archive.UIDValidity || cd.SourceUIDs.String() != "1:2" || cd.DestUIDs.String() != "1:2" {
		t.Errorf("COPYUID %d %s %s", cd.UIDValidity, cd.SourceUIDs, cd.DestUIDs)
	}
	if _, err := c.Copy(imap.SeqSetNum(1), "Nowhere").Wait(); imapCode(err) != imap.ResponseCodeTryCreate {
		t.Errorf("COPY to a missing mailbox: %v, want TRYCREATE", err)
	}

	// MOVE: COPYUID, then EXPUNGE of the moved message.
	var expunged []uint32
	mc := e.selectInbox(&imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Expunge: func(seq uint32) { expunged = append(expunged, seq) },
	}})
	md, err := mc.Move(imap.SeqSetNum(4), "Trash").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if md.SourceUIDs.String() != "4" || md.DestUIDs.String() != "1" || !slices.Equal(expunged, []uint32{4}) {
		t.Errorf("MOVE: COPYUID %s -> %s, expunged %v", md.SourceUIDs, md.DestUIDs, expunged)
	}
	if _, err := mc.Move(imap.SeqSetNum(1), "INBOX").Wait(); err == nil {
		t.Error("MOVE to the selected mailbox succeeded")
	}
	for name, n := range map[string]uint32{"INBOX": 4, "Archive": 2, "Trash": 1} {
		st, err := c.Status(name, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil || *st.NumMessages != n {
			t.Errorf("%s has %v messages, want %d (%v)", name, st, n, err)
		}
	}
	af := flagsOf(t, e.selectMailbox("Archive"), imap.SeqSetNum(1))
	if !sameFlags(af[1], []imap.Flag{"$Erledigt", imap.FlagSeen}) {
		t.Errorf("copied flags %v", af)
	}

	// UID EXPUNGE takes only the named \Deleted messages; EXPUNGE the rest.
	if err := c.Store(imap.UIDSetNum(1, 3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	seqs, err := c.UIDExpunge(imap.UIDSetNum(3, 5)).Collect()
	if err != nil || !slices.Equal(seqs, []uint32{3}) {
		t.Errorf("UID EXPUNGE 3,5 = %v, %v; want [3]", seqs, err)
	}
	seqs, err = c.Expunge().Collect()
	if err != nil || !slices.Equal(seqs, []uint32{1}) {
		t.Errorf("EXPUNGE = %v, %v; want [1]", seqs, err)
	}
	if got := flagsOf(t, c, imap.SeqSet{{Start: 1, Stop: 0}}); len(got) != 2 || !slices.Equal(slices.Sorted(maps.Keys(got)), []imap.UID{2, 5}) {
		t.Errorf("left after expunge: %v", got)
	}
}

func (e *testEnv) selectMailbox(name string) *imapclient.Client {
	e.t.Helper()
	c := e.login(nil)
	if _, err := c.Select(name, nil).Wait(); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func sameFlags(a, b []imap.Flag) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

func TestReadOnly(t *testing.T) {
	e := newEnv(t)
	c := e.selectInbox(nil)
	appendN(t, c, "INBOX", 2)
	c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
	rc := e.rawLogin()
	u := rc.ok("EXAMINE INBOX")
	if !slices.Contains(u, "* OK [PERMANENTFLAGS ()] Permanent flags") {
		t.Errorf("EXAMINE: %q", u)
	}
	if _, done := rc.cmd(`STORE 2 +FLAGS (\Seen)`); !strings.HasPrefix(done, "NO") {
		t.Errorf("STORE in EXAMINE: %q", done)
	}
	if _, done := rc.cmd("EXPUNGE"); !strings.HasPrefix(done, "NO") {
		t.Errorf("EXPUNGE in EXAMINE: %q", done)
	}
	rc.ok("FETCH 2 (BODY[TEXT])") // no implicit \Seen
	rc.ok("CLOSE")                // and no expunge
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, NumUnseen: true}).Wait()
	if err != nil || *st.NumMessages != 2 || *st.NumUnseen != 2 {
		t.Errorf("after EXAMINE session: %+v %v", st, err)
	}
	// CLOSE in SELECT does expunge, silently.
	rc.ok("SELECT INBOX")
	if u := rc.ok("CLOSE"); len(u) != 0 {
		t.Errorf("CLOSE sent %q", u)
	}
	st, _ = c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if *st.NumMessages != 1 {
		t.Errorf("CLOSE left %d messages", *st.NumMessages)
	}
}

func TestAppendErrors(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *testEnv) { o.MaxMessageSize = 1000 })
	c := e.login(nil)
	cmd := c.Append("Nowhere", 10, nil)
	cmd.Write([]byte("Subject: x"))
	cmd.Close()
	if _, err := cmd.Wait(); imapCode(err) != imap.ResponseCodeTryCreate {
		t.Errorf("APPEND to a missing mailbox: %v, want TRYCREATE", err)
	}
	// Over APPENDLIMIT: refused before the literal is sent.
	rc := e.rawLogin()
	rc.c.Write([]byte("a1 APPEND INBOX {5000}\r\n"))
	if l := rc.line(); !strings.HasPrefix(l, "a1 NO [TOOBIG]") {
		t.Errorf("APPEND over the limit: %q", l)
	}
	// Over quota.
	if err := e.dir.SetQuota(ctx, testUser, 500); err != nil {
		t.Fatal(err)
	}
	cmd = c.Append("INBOX", 900, nil)
	cmd.Write([]byte(strings.Repeat("x", 900)))
	cmd.Close()
	if _, err := cmd.Wait(); imapCode(err) != imap.ResponseCodeOverQuota {
		t.Errorf("APPEND over quota: %v, want OVERQUOTA", err)
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || *st.NumMessages != 0 {
		t.Errorf("refused APPENDs stored something: %+v %v", st, err)
	}
}

// TestBadInput sends malformed and out-of-range commands: each gets BAD or
// NO (or an empty answer where the RFC says so), the connection survives,
// and nothing changes.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	c := e.selectInbox(nil)
	raw := fixture(t, "nested.eml")
	appendMsg(t, c, "INBOX", raw, &imap.AppendOptions{Flags: []imap.Flag{imap.FlagFlagged}})
	rc := e.rawLogin()
	rc.ok("SELECT INBOX")
	for _, tt := range []struct{ cmd, want string }{
		{"FETCH 2 (FLAGS)", "BAD"},
		{"FETCH 0 (FLAGS)", ""},
		{"FETCH 1 (NOSUCHITEM)", "BAD"},
		{"FETCH 1 (BODY.PEEK[HEADER.FIELDS ()])", ""},
		{"FETCH 1 (BODY.PEEK[1.2.3.4.5.6.7.8.9.10.11.12])", "OK"},
		{"FETCH 1 (BODY.PEEK[]<4294967295.10>)", "OK"},
		{"FETCH 1 (BINARY.PEEK[9.9]<0.10>)", "OK"},
		{"FETCH 1 (BODY.PEEK[0])", "OK"},
		{"UID FETCH 4294967295 (FLAGS)", "OK"},
		{"UID FETCH 1:4294967295 (UID)", "OK"},
		{"FETCH * (BODY.PEEK[99.MIME])", "OK"},
		{`STORE 1 +FLAGS (\Bogus`, "BAD"},
		{`STORE 1 FLAGS.WHAT (\Seen)`, "BAD"},
		{`STORE 5 +FLAGS (\Deleted)`, "BAD"},
		{`COPY 1 ""`, "NO"},
		{`COPY 1:5 Archive`, "BAD"},
		{`MOVE 7 Trash`, "BAD"},
		{`CREATE ""`, "NO"},
		{`CREATE "a%b"`, "NO"},
		{`RENAME INBOX INBOX`, "NO"},
		{`DELETE ""`, "NO"},
		{`SELECT`, "BAD"},
		{`SEARCH`, "BAD"},
		{`UID EXPUNGE 0`, ""},
		{`STATUS INBOX (BOGUS)`, "BAD"},
		{"APPEND Nowhere {3+}\r\nabc", "NO [TRYCREATE]"},
		{`CREATE "Klassen/` + strings.Repeat("x", 2000) + `"`, ""},
		{"ENABLE FOO", "OK"},
		{"GETQUOTAROOT INBOX", "BAD"},
	} {
		_, done := rc.cmd("%s", tt.cmd)
		if !strings.HasPrefix(done, tt.want) || !(strings.HasPrefix(done, "OK") || strings.HasPrefix(done, "NO") || strings.HasPrefix(done, "BAD")) {
			t.Errorf("%.60s: %q, want %s", tt.cmd, done, tt.want)
		}
	}
	u := rc.ok("FETCH 1 (FLAGS BODY.PEEK[])")
	if len(u) != 1 || !strings.Contains(u[0], `FLAGS (\Flagged)`) || !strings.Contains(u[0], string(raw)) {
		t.Errorf("message changed by bad input: %q", u)
	}
	list := listAll(t, c, "*", nil)
	if len(list) != 6 {
		t.Errorf("mailboxes changed by bad input: %v", list)
	}
}
