package imap

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// searchFixture appends six messages to INBOX: sequence numbers and UIDs
// 1 to 6 (see the comments).
func searchFixture(t *testing.T, e *testEnv) {
	c := e.login(nil)
	day := func(d int, m time.Month) time.Time { return time.Date(2023, m, d, 12, 0, 0, 0, time.UTC) }
	big := simpleMessage("Hausaufgaben", strings.Repeat("Bitte Seite 12 lesen. ", 500))
	for _, m := range []struct {
		raw   []byte
		flags []imap.Flag
		date  time.Time
	}{
		{fixture(t, "nested.eml"), []imap.Flag{imap.FlagFlagged}, day(14, 3)},                     // 1: Jürgen Müller, QP UTF-8, embedded message
		{fixture(t, "latin1.eml"), []imap.Flag{imap.FlagSeen}, day(15, 3)},                        // 2: ISO-8859-1 8bit, encoded-word From/Subject
		{fixture(t, "utf8.eml"), []imap.Flag{"$Ausflug"}, day(16, 3)},                             // 3: raw UTF-8 From, base64 body
		{fixture(t, "attachment.eml"), []imap.Flag{imap.FlagSeen, imap.FlagAnswered}, day(17, 3)}, // 4: From Carol
		{fixture(t, "broken.eml"), nil, day(18, 3)},                                               // 5: broken MIME
		{big, nil, day(1, 4)}, // 6: ~11 kB, sent 2 Jan 2023
	} {
		appendMsg(t, c, "INBOX", m.raw, &imap.AppendOptions{Flags: m.flags, Time: m.date})
	}
	c.Logout().Wait()
}

func TestSearch(t *testing.T) {
	e := newEnv(t)
	searchFixture(t, e)
	c := e.selectInbox(nil)
	date := func(s string) time.Time {
		d, err := time.Parse("2-Jan-2006", s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	hdr := func(k, v string) *imap.SearchCriteria {
		return &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: k, Value: v}}}
	}
	tests := []struct {
		name string
		c    *imap.SearchCriteria
		want []uint32
	}{
		{"ALL", &imap.SearchCriteria{}, []uint32{1, 2, 3, 4, 5, 6}},
		{"FROM decoded display name", hdr("From", "müller"), []uint32{1}},
		{"FROM address, any case", hdr("From", "JUERGEN@EXAMPLE"), []uint32{1}},
		{"FROM ISO-8859-1 word", hdr("From", "françois"), []uint32{2}},
		{"FROM raw UTF-8", hdr("From", "ÅNGSTRÖM"), []uint32{3}},
		{"SUBJECT ISO-8859-1", hdr("Subject", "grüße aus"), []uint32{2}},
		{"SUBJECT UTF-8 any case", hdr("Subject", "ÜBERLINGEN"), []uint32{3}},
		{"TO display name", hdr("To", "team 7b"), []uint32{1}},
		{"CC", hdr("Cc", "carol"), []uint32{1}},
		{"BCC nobody", hdr("Bcc", "carol"), nil},
		{"HEADER other field", hdr("X-Klasse", "8A"), []uint32{2}},
		{"HEADER field exists", hdr("X-Kreide-Test", ""), []uint32{1}},
		{"HEADER Message-ID", hdr("Message-ID", "att@example"), []uint32{4}},
		{"BODY Latin-1 8bit", &imap.SearchCriteria{Body: []string{"KÄSE"}}, []uint32{2}},
		{"BODY quoted-printable UTF-8", &imap.SearchCriteria{Body: []string{"hängt an"}}, []uint32{1}},
		{"BODY base64 UTF-8", &imap.SearchCriteria{Body: []string{"regenjacke mitbringen ☔"}}, []uint32{3}},
		{"BODY in embedded message", &imap.SearchCriteria{Body: []string{"elternabend"}}, []uint32{1}},
		{"BODY not in headers", &imap.SearchCriteria{Body: []string{"françois"}}, nil},
		{"BODY lenient base64", &imap.SearchCriteria{Body: []string{"hello world"}}, []uint32{5}},
		{"BODY long text", &imap.SearchCriteria{Body: []string{"seite 12 lesen. bitte"}}, []uint32{6}},
		{"BODY two terms", &imap.SearchCriteria{Body: []string{"wochenplan", "jürgen"}}, []uint32{1}},
		{"TEXT header", &imap.SearchCriteria{Text: []string{"françois"}}, []uint32{2}},
		{"TEXT body", &imap.SearchCriteria{Text: []string{"arbeitsblatt."}}, []uint32{4}},
		{"SEEN", &imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}, []uint32{2, 4}},
		{"UNSEEN", &imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, []uint32{1, 3, 5, 6}},
		{"FLAGGED", &imap.SearchCriteria{Flag: []imap.Flag{imap.FlagFlagged}}, []uint32{1}},
		{"ANSWERED", &imap.SearchCriteria{Flag: []imap.Flag{imap.FlagAnswered}}, []uint32{4}},
		{"KEYWORD", &imap.SearchCriteria{Flag: []imap.Flag{"$Ausflug"}}, []uint32{3}},
		{"UNKEYWORD", &imap.SearchCriteria{NotFlag: []imap.Flag{"$Ausflug"}}, []uint32{1, 2, 4, 5, 6}},
		{"RECENT", &imap.SearchCriteria{Flag: []imap.Flag{`\Recent`}}, nil},
		{"LARGER", &imap.SearchCriteria{Larger: 5000}, []uint32{6}},
		{"SMALLER", &imap.SearchCriteria{Smaller: 500}, []uint32{2, 3, 5}},
		{"SINCE", &imap.SearchCriteria{Since: date("16-Mar-2023")}, []uint32{3, 4, 5, 6}},
		{"BEFORE", &imap.SearchCriteria{Before: date("15-Mar-2023")}, []uint32{1}},
		{"ON", &imap.SearchCriteria{Since: date("15-Mar-2023"), Before: date("16-Mar-2023")}, []uint32{2}},
		{"SENTBEFORE", &imap.SearchCriteria{SentBefore: date("15-Mar-2023")}, []uint32{1, 6}},
		{"SENTON", &imap.SearchCriteria{SentSince: date("16-Mar-2023"), SentBefore: date("17-Mar-2023")}, []uint32{3}},
		{"SENTSINCE falls back to INTERNALDATE without Date", &imap.SearchCriteria{SentSince: date("18-Mar-2023")}, []uint32{5}},
		{"sequence set", &imap.SearchCriteria{SeqNum: []imap.SeqSet{{{Start: 2, Stop: 4}}}}, []uint32{2, 3, 4}},
		{"sequence set and flag", &imap.SearchCriteria{SeqNum: []imap.SeqSet{{{Start: 2, Stop: 4}}}, Flag: []imap.Flag{imap.FlagSeen}}, []uint32{2, 4}},
		{"*", &imap.SearchCriteria{SeqNum: []imap.SeqSet{{{Start: 0, Stop: 0}}}}, []uint32{6}},
		{"UID range", &imap.SearchCriteria{UID: []imap.UIDSet{{{Start: 5, Stop: 0}}}}, []uint32{5, 6}},
		{"NOT", &imap.SearchCriteria{Not: []imap.SearchCriteria{{Flag: []imap.Flag{imap.FlagSeen}}}}, []uint32{1, 3, 5, 6}},
		{"OR", &imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{*hdr("From", "carol"), *hdr("From", "zoe")}}}, []uint32{3, 4}},
		{"NOT OR", &imap.SearchCriteria{Not: []imap.SearchCriteria{{Or: [][2]imap.SearchCriteria{{
			{Flag: []imap.Flag{imap.FlagSeen}}, {Flag: []imap.Flag{imap.FlagFlagged}}}}}}}, []uint32{3, 5, 6}},
		{"AND of several", &imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}, Since: date("15-Mar-2023"),
			Not: []imap.SearchCriteria{*hdr("From", "zoe")}}, []uint32{5, 6}},
	}
	for _, tt := range tests {
		data, err := c.Search(tt.c, nil).Wait()
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got := data.AllSeqNums(); !slices.Equal(got, tt.want) {
			t.Errorf("SEARCH %s = %v, want %v", tt.name, got, tt.want)
		}
	}

	// UID SEARCH answers UIDs; after expunging message 1 they differ from
	// sequence numbers.
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	data, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := data.AllUIDs(); !slices.Equal(got, []imap.UID{3, 5, 6}) {
		t.Errorf("UID SEARCH UNSEEN = %v", got)
	}
	data, err = c.Search(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, nil).Wait()
	if err != nil || !slices.Equal(data.AllSeqNums(), []uint32{2, 4, 5}) {
		t.Errorf("SEARCH UNSEEN after expunge = %v, %v", data.AllSeqNums(), err)
	}
	data, err = c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, &imap.SearchOptions{ReturnMin: true, ReturnMax: true, ReturnCount: true}).Wait()
	if err != nil || data.Min != 3 || data.Max != 6 || data.Count != 3 {
		t.Errorf("ESEARCH MIN MAX COUNT = %+v, %v", data, err)
	}
}

func TestSearchWire(t *testing.T) {
	e := newEnv(t)
	searchFixture(t, e)
	rc := e.rawLogin()
	rc.ok("SELECT INBOX")

	// IMAP4rev1 SEARCH with CHARSET UTF-8 and a literal.
	rc.c.Write([]byte("s1 SEARCH CHARSET UTF-8 SUBJECT {7+}\r\ngrüße\r\n"))
	var lines []string
	for {
		l := rc.line()
		lines = append(lines, l)
		if strings.HasPrefix(l, "s1 ") {
			break
		}
	}
	if !slices.Contains(lines, "* SEARCH 2") || !strings.HasPrefix(lines[len(lines)-1], "s1 OK") {
		t.Errorf("SEARCH CHARSET UTF-8 = %q", lines)
	}
	if _, done := rc.cmd("SEARCH CHARSET ISO-8859-1 SUBJECT x"); !strings.HasPrefix(done, "NO [BADCHARSET") {
		t.Errorf("unsupported charset: %q", done)
	}
	// ESEARCH form.
	u := rc.ok("UID SEARCH RETURN (MIN COUNT) SEEN")
	if len(u) != 1 || !strings.HasPrefix(u[0], "* ESEARCH (TAG ") || !strings.HasSuffix(u[0], " UID MIN 2 COUNT 2") {
		t.Errorf("ESEARCH = %q", u)
	}
	// SEARCHRES: save, then use $ in FETCH and SEARCH.
	rc.ok("SEARCH RETURN (SAVE) SEEN")
	u = rc.ok("FETCH $ (UID)")
	if !slices.Equal(u, []string{"* 2 FETCH (UID 2)", "* 4 FETCH (UID 4)"}) {
		t.Errorf("FETCH $ = %q", u)
	}
	u = rc.ok("SEARCH $ ANSWERED")
	if !slices.Equal(u, []string{"* SEARCH 4"}) {
		t.Errorf("SEARCH $ ANSWERED = %q", u)
	}
	// Bad search keys are client errors and change nothing.
	for _, bad := range []string{"SEARCH (OR SEEN)", "SEARCH BEFORE 99-Foo-2023", "SEARCH LARGER -1", "SEARCH 0:1", "SEARCH UID x"} {
		if _, done := rc.cmd("%s", bad); !strings.HasPrefix(done, "BAD") && !strings.HasPrefix(done, "NO") {
			t.Errorf("%s: %q", bad, done)
		}
	}
	u = rc.ok("SEARCH ALL")
	if !slices.Equal(u, []string{"* SEARCH 1 2 3 4 5 6"}) {
		t.Errorf("after bad searches: %q", u)
	}
}

func TestContainsFold(t *testing.T) {
	text := strings.Repeat("x", 40000) + "Grüße AUS Köln" + strings.Repeat("y", 40000)
	for _, tt := range []struct {
		needle string
		want   bool
	}{{"grüße aus köln", true}, {"GRÜSSE", false}, {"ße aus k", true}, {"", true}, {"kölnyy", true}, {"xgrü", true}, {"zz", false}} {
		// One byte at a time splits runes and the needle across reads.
		for _, r := range []interface{ Read([]byte) (int, error) }{strings.NewReader(text), &oneByte{s: text}} {
			got, err := containsFold(r, bytes.ToLower([]byte(tt.needle)))
			if err != nil || got != tt.want {
				t.Errorf("containsFold(%q) = %v, %v", tt.needle, got, err)
			}
		}
	}
}

type oneByte struct {
	s string
	i int
}

func (r *oneByte) Read(p []byte) (int, error) {
	if r.i >= len(r.s) {
		return 0, io.EOF
	}
	p[0] = r.s[r.i]
	r.i++
	return 1, nil
}
