package imap

import (
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"kreide/store"
)

func imapCode(err error) imap.ResponseCode {
	var e *imap.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	appPass, err := e.dir.AddAppPassword(ctx, testUser, testPass, "Thunderbird", []store.Scope{store.ScopeIMAP})
	if err != nil {
		t.Fatal(err)
	}
	davPass, err := e.dir.AddAppPassword(ctx, testUser, testPass, "Calendar", []store.Scope{store.ScopeDAV})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user, pass string
		ok               bool
	}{
		{"password", testUser, testPass, true},
		{"login is case-insensitive", "Alice@Example.ORG", testPass, true},
		{"app password", testUser, appPass, true},
		{"app password without imap scope", testUser, davPass, false},
		{"wrong password", testUser, "wrong password", false},
		{"unknown user", "nobody@example.org", testPass, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.dial(nil)
			err := c.Login(tt.user, tt.pass).Wait()
			if tt.ok && err != nil {
				t.Fatalf("login failed: %v", err)
			}
			if !tt.ok && imapCode(err) != imap.ResponseCodeAuthenticationFailed {
				t.Fatalf("got %v, want NO [AUTHENTICATIONFAILED]", err)
			}
		})
	}
	t.Run("AUTHENTICATE PLAIN", func(t *testing.T) {
		c := e.dial(nil)
		if err := c.Authenticate(sasl.NewPlainClient("", testUser, appPass)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		c = e.dial(nil)
		if err := c.Authenticate(sasl.NewPlainClient("", testUser, "nope")); err == nil {
			t.Fatal("AUTHENTICATE PLAIN with a wrong password succeeded")
		}
	})
	t.Run("three failures drop the connection", func(t *testing.T) {
		rc := e.rawT(t)
		for range 3 {
			if _, done := rc.cmd(`LOGIN %s "wrong"`, testUser); !strings.HasPrefix(done, "NO [AUTHENTICATIONFAILED]") {
				t.Fatalf("got %q", done)
			}
		}
		rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := rc.r.ReadByte(); err == nil {
			t.Fatal("connection still open after three failed logins")
		}
	})
}

func TestPlaintextRefused(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *testEnv) { o.AllowPlaintext = nil })

	c := e.dial(nil)
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !caps.Has(imap.CapLoginDisabled) || !caps.Has(imap.CapStartTLS) || caps.Has("AUTH=PLAIN") {
		t.Fatalf("capabilities without TLS: %v; want LOGINDISABLED, STARTTLS and no AUTH=PLAIN", caps)
	}
	err = c.Login(testUser, testPass).Wait()
	if imapCode(err) != imap.ResponseCodePrivacyRequired {
		t.Fatalf("LOGIN without TLS: %v, want NO [PRIVACYREQUIRED]", err)
	}
	if err := c.Authenticate(sasl.NewPlainClient("", testUser, testPass)); err == nil {
		t.Fatal("AUTHENTICATE without TLS succeeded")
	}

	// STARTTLS on the same port, then login works.
	sc, err := imapclient.DialStartTLS(e.addr, &imapclient.Options{TLSConfig: e.tlsConf})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if err := sc.Login(testUser, testPass).Wait(); err != nil {
		t.Fatalf("LOGIN after STARTTLS: %v", err)
	}

	// Implicit TLS.
	tc, err := imapclient.DialTLS(e.tlsAddr, &imapclient.Options{TLSConfig: e.tlsConf})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if err := tc.Login(testUser, testPass).Wait(); err != nil {
		t.Fatalf("LOGIN over TLS: %v", err)
	}
	if _, err := tc.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestCapabilities(t *testing.T) {
	e := newEnv(t)
	c := e.login(nil)
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []imap.Cap{
		imap.CapIMAP4rev1, imap.CapIMAP4rev2, imap.CapIdle, imap.CapNamespace, imap.CapUIDPlus, imap.CapMove,
		imap.CapSpecialUse, imap.CapCreateSpecialUse, imap.CapListExtended, imap.CapListStatus,
		imap.CapStatusSize, imap.CapESearch, imap.CapSearchRes, imap.CapLiteralPlus, imap.CapBinary,
		imap.CapEnable, imap.CapUnselect, "APPENDLIMIT=67108864",
	} {
		if !caps.Has(want) {
			t.Errorf("capability %s missing (have %v)", want, caps)
		}
	}
	ns, err := c.Namespace().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(ns.Personal) != 1 || ns.Personal[0].Delim != '/' || ns.Personal[0].Prefix != "" {
		t.Errorf("NAMESPACE personal = %+v", ns.Personal)
	}
}

func listAll(t *testing.T, c *imapclient.Client, pattern string, opts *imap.ListOptions) map[string]*imap.ListData {
	t.Helper()
	list, err := c.List("", pattern, opts).Collect()
	if err != nil {
		t.Fatalf("LIST %q: %v", pattern, err)
	}
	out := map[string]*imap.ListData{}
	for _, l := range list {
		out[l.Mailbox] = l
	}
	return out
}

func hasAttr(l *imap.ListData, attr imap.MailboxAttr) bool {
	return l != nil && slices.ContainsFunc(l.Attrs, func(a imap.MailboxAttr) bool { return strings.EqualFold(string(a), string(attr)) })
}

func TestListSpecialUse(t *testing.T) {
	e := newEnv(t)
	c := e.login(nil)
	list := listAll(t, c, "*", nil)
	want := map[string]imap.MailboxAttr{"INBOX": "", "Drafts": imap.MailboxAttrDrafts, "Sent": imap.MailboxAttrSent,
		"Trash": imap.MailboxAttrTrash, "Junk": imap.MailboxAttrJunk, "Archive": imap.MailboxAttrArchive}
	for name, attr := range want {
		l := list[name]
		if l == nil {
			t.Errorf("LIST * lacks %s", name)
			continue
		}
		if l.Delim != '/' {
			t.Errorf("%s: delimiter %q", name, l.Delim)
		}
		if attr != "" && !hasAttr(l, attr) {
			t.Errorf("%s: attributes %v lack %s", name, l.Attrs, attr)
		}
	}
	special := listAll(t, c, "*", &imap.ListOptions{SelectSpecialUse: true})
	if _, ok := special["INBOX"]; ok || len(special) != 5 {
		t.Errorf("LIST (SPECIAL-USE) = %v, want the 5 special mailboxes", special)
	}
	// LIST "" "" gives the delimiter.
	root, err := c.List("", "", nil).Collect()
	if err != nil || len(root) != 1 || root[0].Delim != '/' {
		t.Errorf(`LIST "" "" = %+v, %v`, root, err)
	}
	// LIST-STATUS.
	appendMsg(t, c, "Sent", simpleMessage("sent one", "x"), nil)
	st := listAll(t, c, "Sent", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true, NumUnseen: true, Size: true}})
	if s := st["Sent"]; s == nil || s.Status == nil || *s.Status.NumMessages != 1 || *s.Status.NumUnseen != 1 || *s.Status.Size == 0 {
		t.Errorf("LIST RETURN (STATUS) = %+v", st["Sent"])
	}
}

func TestMailboxHierarchy(t *testing.T) {
	e := newEnv(t)
	c := e.login(nil)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Create("Klassen/7b/Elternbriefe", nil).Wait())
	list := listAll(t, c, "Klassen*", nil)
	for _, name := range []string{"Klassen", "Klassen/7b", "Klassen/7b/Elternbriefe"} {
		if list[name] == nil || hasAttr(list[name], imap.MailboxAttrNoSelect) {
			t.Errorf("CREATE did not make %s selectable: %+v", name, list[name])
		}
	}
	if !hasAttr(list["Klassen"], imap.MailboxAttrHasChildren) || !hasAttr(list["Klassen/7b/Elternbriefe"], imap.MailboxAttrHasNoChildren) {
		t.Errorf("children attributes wrong: %+v", list)
	}
	if err := c.Create("Klassen", nil).Wait(); imapCode(err) != imap.ResponseCodeAlreadyExists {
		t.Errorf("CREATE existing: %v, want ALREADYEXISTS", err)
	}
	if err := c.Create("Bad//Name", nil).Wait(); err == nil {
		t.Error("CREATE with an empty level succeeded")
	}
	// Non-ASCII names travel as modified UTF-7 and come back intact.
	must(c.Create("Klassen/Übungen", nil).Wait())
	if _, err := c.Select("Klassen/Übungen", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	must(c.Unselect().Wait())

	// Messages survive a rename of their parent.
	appendMsg(t, c, "Klassen/7b/Elternbriefe", simpleMessage("Brief", "Liebe Eltern"), nil)
	must(c.Rename("Klassen", "Schule/Klassen", nil).Wait())
	list = listAll(t, c, "*", nil)
	for _, name := range []string{"Schule", "Schule/Klassen", "Schule/Klassen/7b", "Schule/Klassen/7b/Elternbriefe", "Schule/Klassen/Übungen"} {
		if list[name] == nil {
			t.Errorf("after RENAME, %s is missing", name)
		}
	}
	for name := range list {
		if strings.HasPrefix(name, "Klassen") {
			t.Errorf("after RENAME, old name %s still listed", name)
		}
	}
	st, err := c.Status("Schule/Klassen/7b/Elternbriefe", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || *st.NumMessages != 1 {
		t.Fatalf("STATUS after rename: %+v %v", st, err)
	}
	if err := c.Rename("Schule", "Schule/Sub", nil).Wait(); err == nil {
		t.Error("RENAME into its own child succeeded")
	}
	if err := c.Rename("Nowhere", "Elsewhere", nil).Wait(); imapCode(err) != imap.ResponseCodeNonExistent {
		t.Errorf("RENAME of a missing mailbox: %v", err)
	}
	if err := c.Rename("Sent", "Drafts", nil).Wait(); imapCode(err) != imap.ResponseCodeAlreadyExists {
		t.Errorf("RENAME onto an existing mailbox: %v", err)
	}

	// DELETE of a parent keeps the children; the parent shows as \Noselect.
	must(c.Delete("Schule/Klassen").Wait())
	list = listAll(t, c, "Schule/%", nil)
	if l := list["Schule/Klassen"]; l == nil || !hasAttr(l, imap.MailboxAttrNoSelect) || !hasAttr(l, imap.MailboxAttrHasChildren) {
		t.Errorf("deleted parent: %+v, want \\Noselect \\HasChildren", l)
	}
	if _, err := c.Select("Schule/Klassen", nil).Wait(); imapCode(err) != imap.ResponseCodeNonExistent {
		t.Errorf("SELECT deleted parent: %v", err)
	}
	if _, err := c.Status("Schule/Klassen/7b/Elternbriefe", &imap.StatusOptions{NumMessages: true}).Wait(); err != nil {
		t.Errorf("child lost with its parent: %v", err)
	}
	if err := c.Delete("Nowhere").Wait(); imapCode(err) != imap.ResponseCodeNonExistent {
		t.Errorf("DELETE missing: %v, want NONEXISTENT", err)
	}
	if err := c.Delete("INBOX").Wait(); err == nil {
		t.Error("DELETE INBOX succeeded")
	}

	// RENAME INBOX moves its messages and leaves INBOX empty.
	appendMsg(t, c, "INBOX", simpleMessage("in inbox", "x"), nil)
	must(c.Rename("INBOX", "Old Inbox", nil).Wait())
	for name, n := range map[string]uint32{"INBOX": 0, "Old Inbox": 1} {
		st, err := c.Status(name, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil || *st.NumMessages != n {
			t.Errorf("after RENAME INBOX, %s has %v messages (%v), want %d", name, st, err, n)
		}
	}

	// CREATE-SPECIAL-USE.
	if err := c.Create("Another Archive", &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrArchive}}).Wait(); imapCode(err) != "USEATTR" {
		t.Errorf("second \\Archive: %v, want NO [USEATTR]", err)
	}
	must(c.Create("Wichtig", &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrFlagged}}).Wait())
	if l := listAll(t, c, "Wichtig", nil)["Wichtig"]; !hasAttr(l, imap.MailboxAttrFlagged) {
		t.Errorf("created \\Flagged mailbox lists as %+v", l)
	}
}

func TestSubscribe(t *testing.T) {
	e := newEnv(t)
	c := e.login(nil)
	if err := c.Create("Projekte", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Unsubscribe("Projekte").Wait(); err != nil {
		t.Fatal(err)
	}
	subscribed := listAll(t, c, "*", &imap.ListOptions{SelectSubscribed: true})
	if subscribed["Projekte"] != nil || subscribed["INBOX"] == nil {
		t.Errorf("LIST (SUBSCRIBED) after UNSUBSCRIBE: %v", subscribed)
	}
	if err := c.Subscribe("Projekte").Wait(); err != nil {
		t.Fatal(err)
	}
	subscribed = listAll(t, c, "*", &imap.ListOptions{SelectSubscribed: true})
	if !hasAttr(subscribed["Projekte"], imap.MailboxAttrSubscribed) {
		t.Errorf("LIST (SUBSCRIBED) after SUBSCRIBE: %+v", subscribed["Projekte"])
	}
	if err := c.Subscribe("Nowhere").Wait(); imapCode(err) != imap.ResponseCodeNonExistent {
		t.Errorf("SUBSCRIBE missing: %v", err)
	}
	rc := e.rawLogin()
	u := rc.ok(`LSUB "" "*"`)
	if !slices.ContainsFunc(u, func(l string) bool { return strings.HasPrefix(l, "* LSUB") && strings.HasSuffix(l, `"Projekte"`) }) {
		t.Errorf("LSUB = %q", u)
	}
}

func TestStatus(t *testing.T) {
	e := newEnv(t)
	c := e.login(nil)
	for i := range 3 {
		flags := []imap.Flag{}
		if i == 0 {
			flags = append(flags, imap.FlagSeen, imap.FlagDeleted)
		}
		appendMsg(t, c, "INBOX", simpleMessage("status", strings.Repeat("x", 100*i)), &imap.AppendOptions{Flags: flags})
	}
	mb, err := e.acct.MailboxByName(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true,
		NumUnseen: true, Size: true, NumDeleted: true, AppendLimit: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if *st.NumMessages != 3 || *st.NumUnseen != 2 || st.UIDNext != 4 || st.UIDValidity != mb.UIDValidity ||
		*st.Size != mb.Size || *st.NumDeleted != 1 || st.AppendLimit == nil || *st.AppendLimit != 64<<20 {
		t.Errorf("STATUS = %+v (messages %d unseen %d size %d deleted %d)", st, *st.NumMessages, *st.NumUnseen, *st.Size, *st.NumDeleted)
	}
	if _, err := c.Status("Nowhere", &imap.StatusOptions{NumMessages: true}).Wait(); imapCode(err) != imap.ResponseCodeNonExistent {
		t.Errorf("STATUS missing: %v", err)
	}
}

func TestConnectionLimits(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *testEnv) { o.MaxConnsPerIP, o.MaxConnsPerUser = 3, 2 })
	first := e.login(nil)
	e.login(nil)
	c := e.dial(nil)
	if err := c.Login(testUser, testPass).Wait(); imapCode(err) != imap.ResponseCodeLimit {
		t.Fatalf("third session of one user: %v, want NO [LIMIT]", err)
	}
	// The fourth connection from one address is turned away at once.
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 200)
	n, _ := nc.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "* BYE") {
		t.Fatalf("fourth connection got %q, want BYE", buf[:n])
	}
	// Closing a session frees its slots.
	first.Logout().Wait()
	c.Close()
	time.Sleep(200 * time.Millisecond)
	e.login(nil).Logout().Wait()
}

func TestIdleTimeouts(t *testing.T) {
	e := newEnv(t, withTimeouts(timeouts{unauth: 300 * time.Millisecond, auth: 600 * time.Millisecond, idle: 3 * time.Second}))
	closedWithin := func(nc net.Conn, d time.Duration) bool {
		nc.SetReadDeadline(time.Now().Add(d))
		buf := make([]byte, 4096)
		for {
			if _, err := nc.Read(buf); err != nil {
				var ne net.Error
				return !(errors.As(err, &ne) && ne.Timeout())
			}
		}
	}
	rc := e.raw()
	if !closedWithin(rc.c, 2*time.Second) {
		t.Error("unauthenticated idle connection not dropped")
	}
	rc = e.rawLogin()
	if !closedWithin(rc.c, 3*time.Second) {
		t.Error("authenticated idle connection not dropped")
	}
	rc = e.rawLogin()
	rc.ok("SELECT INBOX")
	rc.c.Write([]byte("i IDLE\r\n"))
	if l := rc.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}
	if closedWithin(rc.c, 1500*time.Millisecond) {
		t.Fatal("IDLE connection dropped after the command timeout")
	}
	rc.c.Write([]byte("DONE\r\n"))
	if l := rc.line(); !strings.HasPrefix(l, "i OK") {
		t.Fatalf("IDLE end: %q", l)
	}
}

func TestTLSHandshakeTimeout(t *testing.T) {
	to := defaultTimeouts
	to.unauth = 300 * time.Millisecond
	e := newEnv(t, withTimeouts(to))
	nc, err := net.Dial("tcp", e.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err = nc.Read(make([]byte, 10))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("silent TLS client kept its connection")
	}
	// A real client still gets through.
	tc, err := tls.Dial("tcp", e.tlsAddr, e.tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	tc.Close()
}

func TestIMAP4rev2(t *testing.T) {
	e := newEnv(t)
	c := e.login(nil)
	appendN(t, c, "Sent", 2)
	rc := e.rawLogin()
	if u := rc.ok("ENABLE IMAP4rev2"); !slices.Equal(u, []string{"* ENABLED IMAP4rev2"}) {
		t.Fatalf("ENABLE: %q", u)
	}
	u := rc.ok("SELECT Sent")
	if !slices.Contains(u, `* LIST (\Sent) "/" "Sent"`) || hasLine(u, "* 0 RECENT") || !slices.Contains(u, "* 2 EXISTS") {
		t.Errorf("IMAP4rev2 SELECT: %q", u)
	}
	if u := rc.ok("SEARCH ALL"); len(u) != 1 || !strings.HasSuffix(u[0], " ALL 1:2") || !strings.HasPrefix(u[0], "* ESEARCH") {
		t.Errorf("IMAP4rev2 SEARCH: %q", u)
	}
}
