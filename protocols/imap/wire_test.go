package imap

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

func TestID(t *testing.T) {
	e := newEnv(t)
	c := e.dial(nil)
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !caps.Has(imap.CapID) {
		t.Fatalf("ID not advertised before login: %v", caps)
	}
	// Apple Mail and Outlook send ID before logging in, Thunderbird after.
	for _, when := range []string{"before login", "after login"} {
		data, err := c.ID(&imap.IDData{Name: "Thunderbird", Version: "128.0"}).Wait()
		if err != nil {
			t.Fatalf("ID %s: %v", when, err)
		}
		if data == nil || data.Name != "kreide" {
			t.Fatalf("ID %s: server said %+v", when, data)
		}
		if when == "before login" {
			if err := c.Login(testUser, testPass).Wait(); err != nil {
				t.Fatal(err)
			}
		}
	}
	caps, err = c.Capability().Wait()
	if err != nil || !caps.Has(imap.CapID) {
		t.Fatalf("ID not advertised after login: %v %v", caps, err)
	}

	rc := e.raw()
	if u := rc.ok("ID NIL"); len(u) != 1 || !strings.HasPrefix(u[0], `* ID ("name" "kreide"`) {
		t.Fatalf("ID NIL: %q", u)
	}
	for _, bad := range []string{`ID`, `ID foo`, `ID ("name")`, `ID ("name" "x" )`, `ID ("name" "x"`, `ID ()`} {
		if _, done := rc.cmd("%s", bad); !strings.HasPrefix(done, "BAD") {
			t.Errorf("%s: %s, want BAD", bad, done)
		}
	}
	// Malformed ID is no unknown command: the connection stays open.
	rc.ok("NOOP")
	rc.ok(`ID ("name" "x" "version" NIL "os" "Linux \"6\"")`)
}

// Commands the front answers itself keep their place among pipelined
// commands.
func TestPipelinedOrder(t *testing.T) {
	e := newEnv(t)
	rc := e.rawLogin()
	if _, err := rc.c.Write([]byte("p1 SELECT INBOX\r\np2 ID NIL\r\np3 NOOP\r\np4 ID NIL\r\n")); err != nil {
		t.Fatal(err)
	}
	var order []string
	for len(order) < 6 {
		l := rc.line()
		switch {
		case strings.HasPrefix(l, "* ID "):
			order = append(order, "ID")
		case strings.HasPrefix(l, "p"):
			order = append(order, strings.Fields(l)[0]+" "+strings.Fields(l)[1])
		}
	}
	want := []string{"p1 OK", "ID", "p2 OK", "p3 OK", "ID", "p4 OK"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("responses %v, want %v", order, want)
	}
}

func TestAppendOverLimit(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *testEnv) { o.MaxMessageSize = 1000 })
	rc := e.rawLogin()
	caps := rc.ok("CAPABILITY")
	if !strings.Contains(caps[0], " APPENDLIMIT=1000") {
		t.Fatalf("capabilities: %s", caps[0])
	}

	// A non-synchronizing literal over the limit: refused, and its bytes,
	// which look like commands, are dropped rather than run.
	evil := strings.Repeat("x", 1500) + "\r\ne1 DELETE Trash\r\ne2 CREATE Evil\r\n"
	fmt.Fprintf(rc.c, "a1 APPEND INBOX {%d+}\r\n%s\r\na2 NOOP\r\n", len(evil), evil)
	rc.expect("a1 NO [TOOBIG]", "oversized LITERAL+ APPEND")
	rc.expect("a2 OK", "after the refused APPEND")
	// A synchronizing one: refused without inviting the literal.
	fmt.Fprintf(rc.c, "b1 APPEND INBOX (\\Seen) {5000}\r\n")
	rc.expect("b1 NO [TOOBIG]", "oversized APPEND")
	// The mailbox name as a literal is no message literal.
	fmt.Fprintf(rc.c, "b2 APPEND {5}\r\n")
	rc.expect("+", "APPEND with a literal mailbox name")
	msg := simpleMessage("limit", "ok")
	fmt.Fprintf(rc.c, "INBOX {%d+}\r\n%s\r\n", len(msg), msg)
	rc.expect("b2 OK [APPENDUID", "APPEND within the limit")

	u := rc.ok("LIST \"\" *")
	if strings.Contains(strings.Join(u, "\n"), "Evil") || !strings.Contains(strings.Join(u, "\n"), "Trash") {
		t.Fatalf("the dropped literal's lines ran as commands: %q", u)
	}
	if u := rc.ok("STATUS INBOX (MESSAGES)"); !strings.Contains(u[0], "MESSAGES 1") {
		t.Fatalf("INBOX after one good and two refused APPENDs: %q", u)
	}
}

// Outside APPEND, literals are limited to 4 KiB, as imapserver's are; the
// refusal comes at once and the connection goes on.
func TestOversizedLiteral(t *testing.T) {
	e := newEnv(t)
	rc := e.raw()
	fmt.Fprintf(rc.c, "a LOGIN {100000}\r\n")
	rc.expect("a NO [TOOBIG]", "synchronizing literal over 4 KiB")
	junk := strings.Repeat("y", 5000) + "\r\nq LOGOUT\r\n"
	fmt.Fprintf(rc.c, "b LOGIN {%d+}\r\n%s {4+}\r\npass\r\nc NOOP\r\n", len(junk), junk)
	rc.expect("b NO [TOOBIG]", "non-synchronizing literal over 4 KiB")
	rc.expect("c OK", "after the refused literal")
	rc.ok("LOGIN %s {%d+}\r\n%s", testUser, len(testPass), testPass)
}

// Message content that looks like commands or responses passes both ways
// untouched: literals are followed, not parsed.
func TestLiteralsPassUntouched(t *testing.T) {
	e := newEnv(t)
	c := e.selectInbox(nil)
	body := "* CAPABILITY IMAP4rev1\r\nz OK [CAPABILITY IMAP4rev1] hi\r\ny ID NIL\r\nx STARTTLS\r\nw APPEND INBOX {99999999+}\r\n"
	raw := simpleMessage("looks like IMAP", body)
	uid := appendMsg(t, c, "INBOX", raw, nil)
	msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH: %v %d", err, len(msgs))
	}
	got := msgs[0].FindBodySection(&imap.FetchItemBodySection{})
	if !bytes.Equal(got, raw) {
		t.Fatalf("message changed on the way:\n%q\nwant\n%q", got, raw)
	}
}

func TestStartTLSDropsInjectedCommands(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *testEnv) { o.AllowPlaintext = nil })
	rc := e.raw()
	caps := rc.ok("CAPABILITY")[0]
	for _, want := range []string{" STARTTLS", " LOGINDISABLED", " ID"} {
		if !strings.Contains(caps, want) {
			t.Errorf("capabilities in clear lack%s: %s", want, caps)
		}
	}
	if strings.Contains(caps, "AUTH=") {
		t.Errorf("capabilities in clear offer AUTH: %s", caps)
	}
	// Literal LOGIN arguments are refused before they are read.
	fmt.Fprintf(rc.c, "l1 LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n", len(testUser), testUser, len(testPass), testPass)
	rc.expect("l1 NO [PRIVACYREQUIRED]", "LOGIN in clear")

	// A command sent in clear behind STARTTLS must not run inside TLS.
	fmt.Fprintf(rc.c, "s STARTTLS\r\nx LOGIN %s %q\r\n", testUser, testPass)
	rc.expect("s OK", "STARTTLS")
	if rc.r.Buffered() != 0 {
		t.Fatalf("server wrote %d bytes in clear after STARTTLS", rc.r.Buffered())
	}
	tc := tls.Client(rc.c, e.tlsConf)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	rt := &rawConn{t: t, c: tc, r: bufio.NewReader(tc)}
	u, done := rt.cmd("CAPABILITY")
	if !strings.HasPrefix(done, "OK") {
		t.Fatalf("CAPABILITY over TLS: %s", done)
	}
	if strings.Contains(u[0], "STARTTLS") || strings.Contains(u[0], "LOGINDISABLED") || !strings.Contains(u[0], "AUTH=PLAIN") {
		t.Fatalf("capabilities after STARTTLS: %s", u[0])
	}
	if _, done := rt.cmd("STARTTLS"); !strings.HasPrefix(done, "BAD") {
		t.Fatalf("second STARTTLS: %s", done)
	}
	rt.ok("LOGIN %s %q", testUser, testPass)
	if _, done := rt.cmd("SELECT INBOX"); !strings.HasPrefix(done, "OK") {
		t.Fatalf("SELECT: %s", done)
	}

	// STARTTLS over implicit TLS, or after login on loopback, is refused.
	ic, err := imapclient.DialTLS(e.tlsAddr, &imapclient.Options{TLSConfig: e.tlsConf})
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	caps2, err := ic.Capability().Wait()
	if err != nil || caps2.Has(imap.CapStartTLS) || caps2.Has(imap.CapLoginDisabled) || !caps2.Has("AUTH=PLAIN") {
		t.Fatalf("capabilities over implicit TLS: %v %v", caps2, err)
	}
}

// The front batches response lines: many of them, and literals bigger
// than its buffer, arrive whole and in order.
func TestLargeFetchThroughFront(t *testing.T) {
	e := newEnv(t)
	c := e.selectInbox(nil)
	var raw []byte
	for i := 0; i < 300; i++ {
		raw = simpleMessage(fmt.Sprintf("bulk %d", i), strings.Repeat("line of text\r\n", 200))
		appendMsg(t, c, "INBOX", raw, nil)
	}
	start := time.Now()
	var all imap.SeqSet
	all.AddRange(1, 300)
	msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{{}}}).Collect()
	if err != nil || len(msgs) != 300 {
		t.Fatalf("FETCH: %v, %d messages", err, len(msgs))
	}
	if got := msgs[len(msgs)-1].FindBodySection(&imap.FetchItemBodySection{}); !bytes.Equal(got, raw) {
		t.Fatalf("last message body differs (%d bytes, want %d)", len(got), len(raw))
	}
	t.Logf("FETCH of 300 bodies: %v", time.Since(start))
}

// expect reads a line that must start with prefix.
func (rc *rawConn) expect(prefix, what string) {
	rc.t.Helper()
	if l := rc.line(); !strings.HasPrefix(l, prefix) {
		rc.t.Fatalf("%s: got %q, want %s...", what, l, prefix)
	}
}
