package protocols

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"kreide/store"
	"kreide/store/storetest"
)

// The two users of the authorization matrix: anna attacks, ben is attacked.
const (
	anna, annaPass = "anna@example.org", "anna password 1"
	ben, benPass   = "ben@example.org", "ben password 1"
	benAlias       = "benny@example.org"
)

// What ben stores. Content markers are never sent by anna, so seeing one
// in an answer to anna is a leak. Names are also leaks when anna did not
// name them herself (a listing).
var (
	benContent = []string{"BEN-SUBJECT-7f3a", "BEN-BODY-7f3a", "BEN-FILE-7f3a", "BEN-EVENT-7f3a", "BEN-CARD-7f3a"}
	benNames   = []string{"Ben Secret", "ben-secret-file", "ben-event", "ben-card", ben, benAlias}
)

const (
	benFolder = "/files/Ben%20Secret%20Folder/"
	benFile   = benFolder + "ben-secret-file.txt"
	benCal    = "/dav/calendars/" + ben + "/calendar/"
	benEvent  = benCal + "ben-event.ics"
	benBook   = "/dav/addressbooks/" + ben + "/contacts/"
	benCard   = benBook + "ben-card.vcf"
)

var benEventData = crlf(`BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//kreide//authz test//EN
BEGIN:VEVENT
UID:ben-event-1
DTSTAMP:20250101T000000Z
DTSTART:20250301T100000Z
DTEND:20250301T110000Z
SUMMARY:BEN-EVENT-7f3a
END:VEVENT
END:VCALENDAR
`)

var benCardData = crlf(`BEGIN:VCARD
VERSION:3.0
UID:ben-card-1
FN:BEN-CARD-7f3a
N:Card;Ben;;;
END:VCARD
`)

// authzEnv is the live server with anna's and ben's data in it.
type authzEnv struct {
	*liveServer
	benLock string // ben's lock token on benFile
}

func newAuthzEnv(t *testing.T) *authzEnv {
	dir := storetest.Open(t)
	newUser(t, dir, anna, annaPass)
	newUser(t, dir, ben, benPass)
	if err := dir.AddAlias(context.Background(), ben, benAlias); err != nil {
		t.Fatal(err)
	}
	e := &authzEnv{liveServer: startLive(t, dir)}

	// Ben's data, written through the protocols as ben.
	lc := e.imapLogin(t, ben, benPass)
	benMsg := crlf("From: ben@example.org\nTo: ben@example.org\nSubject: BEN-SUBJECT-7f3a\n\nBEN-BODY-7f3a\n")
	for _, cmd := range []string{
		`CREATE "Ben Secret"`, `CREATE "Ben Secret/Sub"`,
		`APPEND "Ben Secret" ` + imapLiteral(benMsg),
		`APPEND INBOX ` + imapLiteral(benMsg),
	} {
		if _, st := lc.imap(cmd); !strings.HasPrefix(st, "OK") {
			t.Fatalf("ben: %s: %s", cmd, st)
		}
	}
	hc := e.httpClient()
	asBen := func(method, path, body string, hdr map[string]string, want int) string {
		code, resp := e.do(hc, davReq{method: method, path: path, user: ben, pass: benPass, hdr: hdr, body: body})
		if code != want {
			t.Fatalf("ben: %s %s: %d %s", method, path, code, resp)
		}
		return resp
	}
	asBen("MKCOL", benFolder, "", nil, 201)
	asBen("PUT", benFile, "BEN-FILE-7f3a", nil, 201)
	lockBody := `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>ben</D:owner></D:lockinfo>`
	resp := asBen("LOCK", benFile, lockBody, map[string]string{"Timeout": "Second-3600"}, 200)
	i := strings.Index(resp, "opaquelocktoken:")
	if i < 0 {
		t.Fatalf("no lock token in %s", resp)
	}
	e.benLock = resp[i : i+strings.IndexByte(resp[i:], '<')]
	benContent = append(benContent, e.benLock)
	asBen("PUT", benEvent, benEventData, map[string]string{"Content-Type": "text/calendar"}, 201)
	asBen("PUT", benCard, benCardData, map[string]string{"Content-Type": "text/vcard"}, 201)

	// Anna's own data: a message to COPY and MOVE, a file.
	lc = e.imapLogin(t, anna, annaPass)
	if _, st := lc.imap(`APPEND INBOX ` + imapLiteral(crlf("Subject: anna's\n\nhello\n"))); !strings.HasPrefix(st, "OK") {
		t.Fatal(st)
	}
	if code, body := e.do(hc, davReq{method: "PUT", path: "/files/anna.txt", user: anna, pass: annaPass, body: "anna"}); code != 201 {
		t.Fatalf("anna PUT: %d %s", code, body)
	}
	return e
}

// annaHas reports whether the WebDAV path or URL p names something in
// anna's own tree.
func (e *authzEnv) annaHas(t *testing.T, p string) bool {
	t.Helper()
	if u, err := url.Parse(p); err == nil && u.Host != "" {
		return false
	}
	rest, ok := strings.CutPrefix(p, "/files/")
	if !ok {
		return false
	}
	var segs []string
	for _, s := range strings.Split(rest, "/") {
		if s == "" {
			continue
		}
		s, err := url.PathUnescape(s)
		if err != nil {
			return false
		}
		segs = append(segs, s)
	}
	a, err := e.dir.Login(context.Background(), anna, annaPass, store.ScopeDAV)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, err = a.Files().Stat(context.Background(), strings.Join(segs, "/"))
	return err == nil
}

// fingerprint describes everything of ben's that anna might change.
func fingerprint(t *testing.T, dir *store.Directory) string {
	t.Helper()
	ctx := context.Background()
	a, err := dir.Login(ctx, ben, benPass, store.ScopeIMAP)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var b strings.Builder
	ms, err := a.ModSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	used, _, _ := a.Used(ctx)
	fmt.Fprintf(&b, "modseq %d used %d\n", ms, used)
	mbs, err := a.Mailboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mbs {
		fmt.Fprintf(&b, "mailbox %q %d %d %d %v\n", m.Name, m.Messages, m.UIDNext, m.HighestModSeq, m.Subscribed)
	}
	var walk func(p string)
	walk = func(p string) {
		fis, err := a.Files().ReadDir(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, fi := range fis {
			fp := strings.TrimPrefix(p+"/"+fi.Name, "/")
			fmt.Fprintf(&b, "file %q %d %s\n", fp, fi.Size, fi.ETag)
			locks, _ := a.Files().Locks(ctx, fp)
			for _, l := range locks {
				fmt.Fprintf(&b, "  lock %s %s\n", l.Token, l.Expires)
			}
			if fi.Dir {
				walk(fp)
			}
		}
	}
	walk("")
	for _, k := range []store.CollectionKind{store.KindCalendar, store.KindAddressBook} {
		cs, err := a.Collections(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			fmt.Fprintf(&b, "collection %q %q\n", c.Slug, c.DisplayName)
			a.ListObjects(ctx, c.ID, store.ObjectOptions{}, func(o *store.Object) error {
				fmt.Fprintf(&b, "  object %q %s\n", o.Name, o.ETag)
				return nil
			})
		}
	}
	return b.String()
}

// leaked names ben's data found in an answer that anna's request did not
// already contain.
func leaked(request, answer string) []string {
	req := request
	if u, err := url.PathUnescape(request); err == nil {
		req += "\n" + u
	}
	req = strings.ToLower(req)
	ans := strings.ToLower(answer)
	var out []string
	for _, m := range append(slices.Clone(benContent), benNames...) {
		if strings.Contains(ans, strings.ToLower(m)) && !strings.Contains(req, strings.ToLower(m)) {
			out = append(out, m)
		}
	}
	return out
}

// authzCase is one attempt. run returns what anna sent (for the leak check),
// the outcome (IMAP status, SMTP code, HTTP status) and the whole answer.
type authzCase struct {
	proto, op string
	run       func(t *testing.T, e *authzEnv) (sent, outcome, answer string)
	want      []string // acceptable outcomes (prefixes)
}

// TestAuthorizationMatrix: for every operation of every protocol, anna
// (logged in) cannot list, read, change, lock or delete anything of ben's,
// and without valid credentials nobody gets anything. Ben's data is
// compared before and after every attempt; every answer is searched for
// ben's data.
func TestAuthorizationMatrix(t *testing.T) {
	e := newAuthzEnv(t)
	before := fingerprint(t, e.dir)

	var cases []authzCase
	cases = append(cases, imapCases()...)
	cases = append(cases, smtpCases()...)
	cases = append(cases, webdavCases(e)...)
	cases = append(cases, caldavCases()...)
	cases = append(cases, unauthenticatedCases()...)

	tally := map[string]int{}
	for _, c := range cases {
		t.Run(c.proto+"/"+c.op, func(t *testing.T) {
			sent, outcome, answer := c.run(t, e)
			tally[c.proto+" "+strings.SplitN(strings.TrimSpace(outcome), " ", 2)[0]]++
			if now := fingerprint(t, e.dir); now != before {
				t.Fatalf("ben's data changed:\nbefore:\n%s\nafter:\n%s", before, now)
			}
			ok := false
			for _, w := range c.want {
				if strings.HasPrefix(outcome, w) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("got %q, want one of %q\nanswer: %s", outcome, c.want, answer)
			}
			if l := leaked(sent, answer); len(l) > 0 {
				t.Errorf("answer reveals ben's %q:\n%s", l, answer)
			}
		})
	}
	keys := slices.Sorted(maps.Keys(tally))
	var sum strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sum, " %s:%d", k, tally[k])
	}
	t.Logf("%d attempts across IMAP, SMTP, WebDAV, CalDAV/CardDAV; outcomes:%s", len(cases), sum.String())
}

// imapCmd runs setup commands (which must succeed) and then cmd as user.
func imapCmd(user, pass string, setup []string, cmd string) func(*testing.T, *authzEnv) (string, string, string) {
	return func(t *testing.T, e *authzEnv) (string, string, string) {
		var lc *lineConn
		if user == "" {
			lc = dialLineFrom(t, e.addr("listen.imap"), otherLoopback())
			lc.line()
		} else {
			lc = e.imapLogin(t, user, pass)
		}
		defer lc.c.Close()
		for _, s := range setup {
			if _, st := lc.imap(s); !strings.HasPrefix(st, "OK") {
				t.Fatalf("setup %s: %s", s, st)
			}
		}
		all, st := lc.imap(cmd)
		return cmd, st, all
	}
}

func imapCases() []authzCase {
	no := []string{"NO"}
	msg := crlf("From: anna@example.org\nSubject: planted\n\nplanted\n")
	inbox := []string{"SELECT INBOX"}
	c := func(op string, setup []string, cmd string, want []string) authzCase {
		return authzCase{proto: "imap", op: op, run: imapCmd(anna, annaPass, setup, cmd), want: want}
	}
	// Mailboxes are per account: ben's names simply do not exist for anna,
	// and no syntax names another user's mailbox.
	cases := []authzCase{
		c("SELECT", nil, `SELECT "Ben Secret"`, no),
		c("EXAMINE", nil, `EXAMINE "Ben Secret"`, no),
		c("STATUS", nil, `STATUS "Ben Secret" (MESSAGES UIDNEXT SIZE)`, no),
		c("APPEND", nil, `APPEND "Ben Secret" `+imapLiteral(msg), no),
		c("COPY", inbox, `COPY 1 "Ben Secret"`, no),
		c("UID COPY", inbox, `UID COPY 1:* "Ben Secret/Sub"`, no),
		c("MOVE", inbox, `MOVE 1 "Ben Secret"`, no),
		c("DELETE", nil, `DELETE "Ben Secret"`, no),
		c("RENAME", nil, `RENAME "Ben Secret" "Mine"`, no),
		c("UNSUBSCRIBE", nil, `UNSUBSCRIBE "Ben Secret"`, []string{"NO", "OK"}), // anna's own subscription list
		c("LIST *", nil, `LIST "" "*"`, []string{"OK"}),
		c("LIST % with STATUS", nil, `LIST "" "%" RETURN (STATUS (MESSAGES))`, []string{"OK"}),
		c("LSUB", nil, `LSUB "" "*"`, []string{"OK"}),
		c("NAMESPACE", nil, `NAMESPACE`, []string{"OK"}),
		c("FETCH all of INBOX", inbox, `UID FETCH 1:* (UID BODY.PEEK[])`, []string{"OK"}),
		c("FETCH UIDs beyond own", inbox, `UID FETCH 2:4294967295 (BODY.PEEK[])`, []string{"OK"}),
		c("SEARCH", inbox, `UID SEARCH ALL`, []string{"OK"}),
		c("SELECT ~user", nil, `SELECT "~ben@example.org/INBOX"`, no),
		c("SELECT #shared", nil, `SELECT "#shared/ben@example.org/INBOX"`, no),
		c("SELECT Other Users", nil, `SELECT "Other Users/ben@example.org/INBOX"`, no),
		c("SELECT user/INBOX", nil, `SELECT "ben@example.org/INBOX"`, no),
		c("SELECT ../", nil, `SELECT "../ben@example.org/Ben Secret"`, no),
		c("SELECT /abs", nil, `SELECT "/Ben Secret"`, no),
		c("STATUS user/INBOX", nil, `STATUS "ben@example.org/INBOX" (MESSAGES)`, no),
		c("APPEND user/INBOX", nil, `APPEND "ben@example.org/INBOX" `+imapLiteral(msg), no),
		{proto: "imap", op: "AUTHENTICATE as ben with anna's password", want: no,
			run: imapCmd("", "", nil, "AUTHENTICATE PLAIN "+base64.StdEncoding.EncodeToString([]byte(ben+"\x00"+anna+"\x00"+annaPass)))},
		{proto: "imap", op: "LOGIN ben with anna's password", want: no,
			run: imapCmd("", "", nil, fmt.Sprintf("LOGIN %q %q", ben, annaPass))},
	}
	// NAMESPACE must offer no other users' or shared namespace.
	for i := range cases {
		if cases[i].op == "NAMESPACE" {
			run := cases[i].run
			cases[i].run = func(t *testing.T, e *authzEnv) (string, string, string) {
				sent, st, all := run(t, e)
				if !strings.Contains(all, `* NAMESPACE (("" "/")) NIL NIL`) {
					st = "namespaces beyond the personal one: " + all
				}
				return sent, st, all
			}
		}
		if cases[i].op == "SEARCH" {
			run := cases[i].run
			cases[i].run = func(t *testing.T, e *authzEnv) (string, string, string) {
				sent, st, all := run(t, e)
				if !strings.Contains(all, "* SEARCH 1\n") && !strings.Contains(all, "ALL 1\n") {
					st = "anna sees messages that are not hers: " + all
				}
				return sent, st, all
			}
		}
	}
	return cases
}

// smtpSession logs in on submission (plaintext is allowed on loopback) and
// runs cmds; the outcome is the last reply's code.
func smtpSession(user, pass string, port string, cmds ...string) func(*testing.T, *authzEnv) (string, string, string) {
	return func(t *testing.T, e *authzEnv) (string, string, string) {
		from := ""
		if user == "" {
			from = otherLoopback()
		}
		lc := dialLineFrom(t, e.addr(port), from)
		defer lc.c.Close()
		lc.smtpReply()
		lc.smtp("EHLO client.example.net")
		if user != "" {
			auth := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
			if r := lc.smtp("AUTH PLAIN " + auth); !strings.HasPrefix(r, "235") {
				t.Fatalf("AUTH as %s: %s", user, r)
			}
		}
		var all strings.Builder
		var last string
		for _, c := range cmds {
			if strings.HasPrefix(c, "DATA\n") {
				r := lc.smtp("DATA")
				all.WriteString(r)
				if !strings.HasPrefix(r, "354") {
					last = r
					break
				}
				last = lc.smtp(crlf(strings.TrimPrefix(c, "DATA\n")) + ".")
			} else {
				last = lc.smtp(c)
			}
			all.WriteString(last)
		}
		return strings.Join(cmds, "\n"), last, all.String()
	}
}

func smtpCases() []authzCase {
	c := func(op string, want string, cmds ...string) authzCase {
		return authzCase{proto: "smtp", op: op, want: []string{want}, run: smtpSession(anna, annaPass, "listen.submission", cmds...)}
	}
	data := func(from, extra string) string {
		return "DATA\nFrom: " + from + "\n" + extra + "To: anna@example.org\nSubject: forged\n\nforged\n"
	}
	return []authzCase{
		c("MAIL FROM ben", "553", "MAIL FROM:<"+ben+">"),
		c("MAIL FROM ben's alias", "553", "MAIL FROM:<"+benAlias+">"),
		c("MAIL FROM ben in capitals", "553", "MAIL FROM:<BEN@EXAMPLE.ORG>"),
		c("From field ben", "553", "MAIL FROM:<"+anna+">", "RCPT TO:<"+anna+">", data(ben, "")),
		c("From field ben's alias", "553", "MAIL FROM:<"+anna+">", "RCPT TO:<"+anna+">", data("Ben <"+benAlias+">", "")),
		c("From field anna and ben", "553", "MAIL FROM:<"+anna+">", "RCPT TO:<"+anna+">", data(anna+", "+ben, "")),
		c("Sender field ben", "553", "MAIL FROM:<"+anna+">", "RCPT TO:<"+anna+">", data(anna, "Sender: "+ben+"\n")),
		{proto: "smtp", op: "AUTH as ben with anna's password (authzid)", want: []string{"535"},
			run: smtpSession("", "", "listen.submission", "AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte(ben+"\x00"+anna+"\x00"+annaPass)))},
		{proto: "smtp", op: "AUTH ben with anna's password", want: []string{"535"},
			run: smtpSession("", "", "listen.submission", "AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00"+ben+"\x00"+annaPass)))},
	}
}

func webdavCases(e *authzEnv) []authzCase {
	// Every way of naming ben's tree from anna's session. Anna's tree is the
	// only tree her requests reach: ben's names are absent there.
	paths := []string{
		benFile,
		benFolder,
		"/files/" + ben + "/Ben%20Secret%20Folder/ben-secret-file.txt",
		"/files/" + url.PathEscape(ben) + "/",
		"/files/../files/Ben%20Secret%20Folder/ben-secret-file.txt",
		"/files/%2e%2e/%2e%2e/users/",
		"/files/..%2f..%2fusers%2f",
		"/files/%2E%2E%2Fben@example.org/",
		"/files//" + ben + "/",
		"/files/./Ben%20Secret%20Folder/",
		`/files/..\..\` + ben + `\`,
		"/files/Ben%20Secret%20Folder%00/ben-secret-file.txt",
	}
	lockBody := `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`
	propBody := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>`
	patchBody := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x:a xmlns:x="urn:x">1</x:a></D:prop></D:set></D:propertyupdate>`
	// 307: the router cleans "..", "." and "//" by redirecting (to a path
	// in anna's tree); 502: a Destination on another server.
	fail := []string{"301", "307", "308", "400", "403", "404", "405", "409", "412", "423", "502"}
	var cases []authzCase
	add := func(op string, r davReq, want []string) {
		r.user, r.pass = anna, annaPass
		cases = append(cases, authzCase{proto: "webdav", op: op, want: want, run: func(t *testing.T, e *authzEnv) (string, string, string) {
			code, body := e.do(e.httpClient(), r)
			hdr := ""
			for k, v := range r.hdr {
				hdr += k + ": " + v + "\n"
			}
			outcome := strconv.Itoa(code)
			// A name anna chooses is a name in her own tree: creating
			// "Ben Secret Folder" or "ben@example.org" there is allowed, and
			// must land there (ben's data is compared after every attempt).
			if code >= 200 && code < 300 && r.method != "PROPFIND" && r.method != "PROPPATCH" {
				target := r.path
				if d := r.hdr["Destination"]; d != "" {
					target = d
				}
				if !e.annaHas(t, target) {
					outcome = "success outside anna's tree: " + outcome
				} else {
					outcome = "in anna's own tree: " + outcome
				}
			}
			return r.String() + "\n" + hdr, outcome, body
		}})
	}
	// Listings of anna's own tree show nothing of ben's (first: later
	// attempts create resources with ben's names in anna's tree).
	add("PROPFIND own root depth 1", davReq{method: "PROPFIND", path: "/files/", hdr: map[string]string{"Depth": "1"}, body: propBody}, []string{"207"})
	add("PROPFIND own root depth infinity", davReq{method: "PROPFIND", path: "/files/", hdr: map[string]string{"Depth": "infinity"}, body: propBody}, []string{"207", "403"})
	add("PROPFIND lockdiscovery of own file", davReq{method: "PROPFIND", path: "/files/anna.txt", hdr: map[string]string{"Depth": "0"}, body: propBody}, []string{"207"})
	for _, p := range paths {
		for _, m := range []struct {
			method, body string
			hdr          map[string]string
		}{
			// Creating methods last: on a name that does not exist in
			// anna's tree, they create it there.
			{"GET", "", nil},
			{"HEAD", "", nil},
			{"PROPFIND", propBody, map[string]string{"Depth": "1"}},
			{"PROPPATCH", patchBody, nil},
			{"DELETE", "", nil},
			{"UNLOCK", "", map[string]string{"Lock-Token": "<" + e.benLock + ">"}},
			{"MOVE", "", map[string]string{"Destination": "/files/stolen"}},
			{"COPY", "", map[string]string{"Destination": "/files/stolen"}},
		} {
			add(m.method+" "+p, davReq{method: m.method, path: p, hdr: m.hdr, body: m.body}, fail)
		}
	}
	create := append(slices.Clone(fail), "in anna's own tree")
	for _, p := range paths {
		if !strings.HasSuffix(p, "/") {
			add("PUT "+p, davReq{method: "PUT", path: p, body: "planted"}, create)
		} else {
			add("MKCOL "+p+"x/", davReq{method: "MKCOL", path: p + "x/"}, create)
		}
		add("LOCK "+p, davReq{method: "LOCK", path: p, body: lockBody}, create)
	}
	// Anna's own resources, aimed at ben's through Destination and lock tokens.
	for _, dst := range []string{
		"/files/../files/Ben%20Secret%20Folder/ben-secret-file.txt",
		"/files/%2e%2e/" + ben + "/x",
		"http://evil.example/files/Ben%20Secret%20Folder/ben-secret-file.txt",
		"/dav/calendars/" + ben + "/calendar/x.ics",
		"/files/" + ben + "/x",
	} {
		for _, m := range []string{"COPY", "MOVE"} {
			add(m+" own file to "+dst, davReq{method: m, path: "/files/anna.txt", hdr: map[string]string{"Destination": dst, "Overwrite": "T"}}, create)
		}
	}
	if code, body := e.do(e.httpClient(), davReq{method: "PUT", path: "/files/anna.txt", user: anna, pass: annaPass, body: "anna"}); code >= 300 {
		panic(fmt.Sprintf("anna PUT: %d %s", code, body))
	}
	add("UNLOCK own file with ben's token", davReq{method: "UNLOCK", path: "/files/anna.txt", hdr: map[string]string{"Lock-Token": "<" + e.benLock + ">"}}, fail)
	add("PUT own file with ben's token", davReq{method: "PUT", path: "/files/anna.txt", hdr: map[string]string{"If": "(<" + e.benLock + ">)"}, body: "x"}, fail)
	return cases
}

func caldavCases() []authzCase {
	paths := []string{
		"/dav/principals/" + ben + "/",
		"/dav/calendars/" + ben + "/",
		benCal,
		benEvent,
		"/dav/calendars/" + ben + "/tasks/",
		"/dav/addressbooks/" + ben + "/",
		benBook,
		benCard,
		"/dav/calendars/BEN@EXAMPLE.ORG/calendar/ben-event.ics",
		"/dav/calendars/ben%40example.org/calendar/ben-event.ics",
		"/dav/calendars/" + anna + "/../" + ben + "/calendar/ben-event.ics", // the router redirects (307) to the cleaned path
		"/dav/calendars/" + anna + "/%2e%2e/" + ben + "/calendar/",
		"/dav/calendars/" + benAlias + "/calendar/",
		"/dav/calendars/" + ben + "/new-calendar/",
	}
	propBody := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>`
	patchBody := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>owned</D:displayname></D:prop></D:set></D:propertyupdate>`
	queryBody := `<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>`
	syncBody := `<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:"><D:sync-token/><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>`
	mkcalBody := `<?xml version="1.0"?><C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop><D:displayname>x</D:displayname></D:prop></D:set></C:mkcalendar>`
	fail := []string{"307", "403", "404"}
	var cases []authzCase
	add := func(op string, r davReq, want []string) {
		r.user, r.pass = anna, annaPass
		cases = append(cases, authzCase{proto: "caldav", op: op, want: want, run: func(t *testing.T, e *authzEnv) (string, string, string) {
			code, body := e.do(e.httpClient(), r)
			return r.String(), strconv.Itoa(code), body
		}})
	}
	for _, p := range paths {
		for _, m := range []struct{ method, body, ctype string }{
			{"PROPFIND", propBody, ""},
			{"GET", "", ""},
			{"PUT", benEventData, "text/calendar"},
			{"DELETE", "", ""},
			{"REPORT", queryBody, ""},
			{"REPORT", syncBody, ""},
			{"PROPPATCH", patchBody, ""},
			{"MKCALENDAR", mkcalBody, ""},
			{"MKCOL", "", ""},
		} {
			hdr := map[string]string{"Depth": "1"}
			if m.ctype != "" {
				hdr["Content-Type"] = m.ctype
			}
			op := m.method + " " + p
			if strings.Contains(m.body, "sync-collection") {
				op = "REPORT sync-collection " + p
			}
			add(op, davReq{method: m.method, path: p, hdr: hdr, body: m.body}, fail)
		}
	}
	// Anna's own collections, with hrefs that name ben's objects.
	multiget := `<?xml version="1.0"?><C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/><C:calendar-data/></D:prop>` +
		`<D:href>` + benEvent + `</D:href><D:href>/dav/calendars/` + anna + `/../` + ben + `/calendar/ben-event.ics</D:href><D:href>http://evil.example` + benEvent + `</D:href></C:calendar-multiget>`
	add("calendar-multiget of ben's hrefs", davReq{method: "REPORT", path: "/dav/calendars/" + anna + "/calendar/", hdr: map[string]string{"Depth": "1"}, body: multiget}, []string{"207", "403", "404"})
	cardget := `<?xml version="1.0"?><A:addressbook-multiget xmlns:D="DAV:" xmlns:A="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/><A:address-data/></D:prop><D:href>` + benCard + `</D:href></A:addressbook-multiget>`
	add("addressbook-multiget of ben's hrefs", davReq{method: "REPORT", path: "/dav/addressbooks/" + anna + "/contacts/", hdr: map[string]string{"Depth": "1"}, body: cardget}, []string{"207", "403", "404"})
	// Listings show anna only.
	for _, p := range []string{"/dav/", "/dav/principals/", "/dav/calendars/", "/dav/addressbooks/", "/dav/calendars/" + anna + "/", "/dav/calendars/" + anna + "/calendar/"} {
		add("PROPFIND "+p, davReq{method: "PROPFIND", path: p, hdr: map[string]string{"Depth": "1"}, body: propBody}, []string{"207"})
	}
	add("calendar-query on own calendar", davReq{method: "REPORT", path: "/dav/calendars/" + anna + "/calendar/", hdr: map[string]string{"Depth": "1"}, body: queryBody}, []string{"207"})
	return cases
}

// unauthenticatedCases: without credentials, with wrong ones, or with an
// app password of another scope, nothing is served.
func unauthenticatedCases() []authzCase {
	var cases []authzCase
	for _, cmd := range []string{
		"SELECT INBOX", "EXAMINE INBOX", "STATUS INBOX (MESSAGES)", "LIST \"\" \"*\"", "CREATE x", "DELETE INBOX",
		"APPEND INBOX " + imapLiteral("Subject: x\r\n\r\nx\r\n"), "UID FETCH 1:* BODY[]", "NAMESPACE",
	} {
		cases = append(cases, authzCase{proto: "unauthenticated", op: "IMAP " + strings.Fields(cmd)[0], want: []string{"NO", "BAD"}, run: imapCmd("", "", nil, cmd)})
	}
	for _, cmds := range [][]string{
		{"MAIL FROM:<" + anna + ">"},
		{"MAIL FROM:<" + ben + ">"},
		{"RCPT TO:<" + ben + ">"},
		{"DATA"},
	} {
		cases = append(cases, authzCase{proto: "unauthenticated", op: "submission " + cmds[0], want: []string{"530", "503", "502"},
			run: smtpSession("", "", "listen.submission", cmds...)})
	}
	cases = append(cases,
		authzCase{proto: "unauthenticated", op: "MX: AUTH not offered", want: []string{"5"},
			run: smtpSession("", "", "listen.smtp", "AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00"+anna+"\x00"+annaPass)))},
		authzCase{proto: "unauthenticated", op: "MX: no relaying", want: []string{"550"},
			run: smtpSession("", "", "listen.smtp", "MAIL FROM:<"+anna+">", "RCPT TO:<someone@example.net>")},
	)
	// Each wrong password comes from its own address with its own login
	// name, so the failed-login limiter does not slow the test down; ben's
	// own name fails only once here (three times in the whole test).
	n := 0
	for _, p := range []string{"/files/", benFile, "/dav/", benEvent, "/dav/principals/" + ben + "/"} {
		for _, m := range []string{"GET", "PROPFIND", "PUT", "DELETE", "REPORT", "LOCK", "MKCOL", "PROPPATCH"} {
			n++
			for _, r := range []davReq{
				{user: ""},
				{user: fmt.Sprintf("guess%d@example.org", n), pass: "guess", from: otherLoopback()},
			} {
				r.method, r.path, r.body = m, p, "x"
				name := "no credentials"
				if r.user != "" {
					name = "wrong password"
				}
				cases = append(cases, authzCase{proto: "unauthenticated", op: "HTTP " + m + " " + p + " " + name, want: []string{"401"},
					run: func(t *testing.T, e *authzEnv) (string, string, string) {
						code, body := e.do(e.httpClient(), r)
						return r.String(), strconv.Itoa(code), body
					}})
			}
		}
	}
	r := davReq{method: "PROPFIND", path: benCal, user: ben, pass: annaPass, from: otherLoopback()}
	cases = append(cases, authzCase{proto: "unauthenticated", op: "HTTP PROPFIND as ben with anna's password", want: []string{"401"},
		run: func(t *testing.T, e *authzEnv) (string, string, string) {
			code, body := e.do(e.httpClient(), r)
			return r.String(), strconv.Itoa(code), body
		}})
	return cases
}
