package message

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParse(t testing.TB, msg []byte) *Structure {
	t.Helper()
	s, err := Parse(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	checkInvariants(t, s, int64(len(msg)))
	return s
}

// crlf converts the LF line breaks of a test literal to CRLF.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// parsePath parses "1.2.3" ("" is the empty path).
func parsePath(t testing.TB, s string) []int {
	t.Helper()
	if s == "" {
		return nil
	}
	var path []int
	for f := range strings.SplitSeq(s, ".") {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("bad path %q", s)
		}
		path = append(path, n)
	}
	return path
}

// section returns BODY[path<.spec>] by slicing msg.
func section(t testing.TB, msg []byte, s *Structure, path, spec string) (string, bool) {
	t.Helper()
	start, end, ok := s.Section(parsePath(t, path), spec)
	if !ok {
		return "", false
	}
	return string(msg[start:end]), true
}

// shape renders the MIME tree compactly: leaves as type/subtype,
// multiparts as type/subtype(children), messages as type/subtype[root].
func shape(p *Part) string {
	var b strings.Builder
	var rec func(p *Part)
	rec = func(p *Part) {
		b.WriteString(p.Type + "/" + p.Subtype)
		switch {
		case p.IsMultipart():
			b.WriteByte('(')
			for i, c := range p.Children {
				if i > 0 {
					b.WriteByte(' ')
				}
				rec(c)
			}
			b.WriteByte(')')
		case p.IsMessage():
			b.WriteByte('[')
			rec(p.Children[0])
			b.WriteByte(']')
		}
	}
	rec(p)
	return b.String()
}

type partWant struct {
	path     string
	media    string            // "type/subtype"
	body     *string           // BODY[path] if non-nil
	mime     *string           // BODY[path.MIME] if non-nil
	lines    int64             // -1: don't check
	params   map[string]string // checked if non-nil
	encoding string            // checked if non-empty
	disp     string
	dparams  map[string]string // checked if non-nil
}

func str(s string) *string { return &s }

type msgWant struct {
	file   string
	shape  string
	env    Envelope // Date compared with Equal and zone offset
	header *string  // BODY[HEADER] if non-nil
	text   *string  // BODY[TEXT] if non-nil
	parts  []partWant
}

func date(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

var structureTests = []msgWant{
	{
		file:  "simple.eml",
		shape: "text/plain",
		env: Envelope{
			Date:    date("2025-03-04T09:14:58+01:00"),
			Subject: "Lunch on Friday?",
			From:    []Address{{"Alice Example", "alice", "example.org"}},
			To:      []Address{{"Bob", "bob", "example.net"}, {"", "carol", "example.net"}},
			Cc:      []Address{{"Doe, John", "john.doe", "example.com"}},
			InReplyTo: []string{
				"abc123@example.net", "def456@example.net",
			},
			MessageID: "20250304081458.GA1234@example.org",
		},
		text: str(crlf("Hi Bob,\n\nare we still on for lunch on Friday? The café on the corner\nhas a new menu.\n\nAlice\n")),
		parts: []partWant{{
			path:     "1",
			media:    "text/plain",
			body:     str(crlf("Hi Bob,\n\nare we still on for lunch on Friday? The café on the corner\nhas a new menu.\n\nAlice\n")),
			lines:    6,
			params:   map[string]string{"charset": "utf-8", "format": "flowed"},
			encoding: "8bit",
		}},
	},
	{
		file:  "alternative.eml",
		shape: "multipart/alternative(text/plain text/html)",
		env: Envelope{
			Date:      date("2025-03-05T14:00:00Z"),
			Subject:   "Große Rabatte – nur heute",
			From:      []Address{{"Newsletter", "news", "shop.example"}},
			To:        []Address{{"", "customer", "example.com"}},
			MessageID: "nl-2025-03-05@shop.example",
		},
		parts: []partWant{
			{
				path:  "1",
				media: "text/plain",
				body: str(crlf("Gro=C3=9Fe Rabatte =E2=80=93 nur heute!\n" +
					"Alle Schuhe 50% g=C3=BCnstiger. Dieser Satz ist absichtlich sehr lang, damit=\n" +
					" er umbrochen wird.")),
				mime:     str(crlf("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n")),
				lines:    2,
				encoding: "quoted-printable",
			},
			{
				path:  "2",
				media: "text/html",
				// The empty line before the delimiter belongs to the body;
				// the CRLF right before it does not.
				body:  str(crlf("<html><body><p>Gro=C3=9Fe Rabatte =E2=80=93 nur heute!</p></body></html>\n")),
				lines: 1,
			},
		},
	},
	{
		file:  "mixed-attachment.eml",
		shape: "multipart/mixed(text/plain application/pdf)",
		env: Envelope{
			Date:      date("2025-03-06T10:30:00-05:00"),
			Subject:   "Re: Invoice",
			From:      []Address{{"Bob", "bob", "example.net"}},
			To:        []Address{{"Alice", "alice", "example.org"}},
			InReplyTo: []string{"inv-77@example.org"},
			MessageID: "CAF=x7y@mail.example.net",
		},
		parts: []partWant{
			{path: "1", media: "text/plain", body: str(crlf("Here is the invoice you asked for.\n")), lines: 1,
				params: map[string]string{"charset": "UTF-8"}, encoding: "7bit"},
			{path: "2", media: "application/pdf", lines: 15, encoding: "base64",
				params: map[string]string{"name": "invoice-2025-03.pdf"},
				disp:   "attachment", dparams: map[string]string{"filename": "invoice-2025-03.pdf", "size": "839"}},
		},
	},
	{
		file:  "nested-rfc822.eml",
		shape: "multipart/mixed(text/plain message/rfc822[multipart/alternative(text/plain text/html)] image/png)",
		env: Envelope{
			Date:      date("2025-03-07T16:45:10+01:00"),
			Subject:   "Fwd: Project plan",
			From:      []Address{{"Carol", "carol", "example.net"}},
			To:        []Address{{"Dave", "dave", "example.com"}},
			MessageID: "fwd-1@example.net",
		},
		parts: []partWant{
			{path: "1", media: "text/plain", body: str("See the forwarded message below."), lines: 0},
			{path: "2", media: "message/rfc822", lines: 17, disp: "inline",
				mime: str(crlf("Content-Type: message/rfc822\nContent-Disposition: inline\n\n")),
				body: str(crlf("From: Erin <erin@example.org>\nTo: Carol <carol@example.net>\nSubject: Project plan\n" +
					"Date: Thu, 06 Mar 2025 08:00:00 +0000\nMessage-ID: <plan@example.org>\nMIME-Version: 1.0\n" +
					"Content-Type: multipart/alternative; boundary=\"inner-ABC\"\n\n" +
					"--inner-ABC\nContent-Type: text/plain; charset=us-ascii\n\nStep 1: plan.\nStep 2: execute.\n" +
					"--inner-ABC\nContent-Type: text/html; charset=us-ascii\n\n<ol><li>plan</li><li>execute</li></ol>\n" +
					"--inner-ABC--"))},
			{path: "2.1", media: "text/plain", body: str(crlf("Step 1: plan.\nStep 2: execute.")), lines: 1,
				mime: str(crlf("Content-Type: text/plain; charset=us-ascii\n\n"))},
			{path: "2.2", media: "text/html", body: str("<ol><li>plan</li><li>execute</li></ol>"), lines: 0},
			{path: "3", media: "image/png", lines: 0, encoding: "base64",
				body: str("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="),
				disp: "inline", dparams: map[string]string{"filename": "dot.png"}},
		},
	},
	{
		file:  "latin1.eml",
		shape: "text/plain",
		env: Envelope{
			Date:    date("2025-03-08T12:00:00+01:00"),
			Subject: "Café crème et naïveté",
			From:    []Address{{"André Pirard", "PIRARD", "vm1.ulg.ac.be"}},
			To: []Address{
				{"François Müller", "fm", "example.fr"},
				{"Jörg", "joerg", "example.de"},
			},
			MessageID: "latin1@example.fr",
		},
		parts: []partWant{{path: "1", media: "text/plain", body: str(crlf("Voil=E0, un caf=E9 cr=E8me.\n")), lines: 1,
			params: map[string]string{"charset": "ISO-8859-1"}}},
	},
	{
		file:  "sjis.eml",
		shape: "text/plain",
		env: Envelope{
			Date:      date("2025-03-09T09:00:00+09:00"),
			Subject:   "日本語の件名テスト", // split mid-character across two words
			From:      []Address{{"山田太郎", "yamada", "example.jp"}},
			To:        []Address{{"佐藤", "sato", "example.jp"}},
			MessageID: "sjis-1@example.jp",
		},
		parts: []partWant{{path: "1", media: "text/plain", lines: 2, params: map[string]string{"charset": "Shift_JIS"}}},
	},
	{
		file:  "rfc2231.eml",
		shape: "multipart/mixed(text/plain application/octet-stream text/csv)",
		env: Envelope{
			Date:      date("2025-03-10T11:11:11+01:00"),
			Subject:   "Documents",
			From:      []Address{{"Frank", "frank", "example.de"}},
			To:        []Address{{"Grace", "grace", "example.com"}},
			MessageID: "rfc2231@example.de",
		},
		parts: []partWant{
			{path: "1", media: "text/plain", body: str(crlf("Two documents attached.\n")), params: map[string]string{}, lines: 1},
			{path: "2", media: "application/octet-stream", body: str(crlf("SGVsbG8gV29ybGQK\n")), lines: 1,
				params: map[string]string{"name": "Résumé final.txt"},
				disp:   "attachment", dparams: map[string]string{"filename": "Résumé final.txt"}},
			{path: "3", media: "text/csv", body: str(crlf("a,b\n1,2\n")), lines: 2,
				params: map[string]string{"charset": "utf-8", "name": "€ rates.csv"},
				disp:   "attachment", dparams: map[string]string{"filename": "€ rates.csv"}},
		},
	},
	{
		file:  "bare-lf.eml",
		shape: "multipart/mixed(text/plain text/plain)",
		env: Envelope{
			Date:    date("2025-03-11T07:07:07-08:00"),
			Subject: "bare LF",
			From:    []Address{{"", "heidi", "example.com"}},
			To:      []Address{{"", "ivan", "example.com"}},
		},
		header: str("From: heidi@example.com\nTo: ivan@example.com\nSubject: bare LF\nDate: 11 Mar 2025 07:07:07 -0800\n" +
			"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"lf\"\n\n"),
		text: str("preamble\n--lf\nContent-Type: text/plain\n\nfirst\npart\n--lf\n\nsecond part (no header)\n--lf--\nepilogue\n"),
		parts: []partWant{
			{path: "1", media: "text/plain", body: str("first\npart"), mime: str("Content-Type: text/plain\n\n"), lines: 1},
			{path: "2", media: "text/plain", body: str("second part (no header)"), mime: str("\n"), lines: 0,
				params: map[string]string{"charset": "us-ascii"}},
		},
	},
	{
		file:  "broken-no-final-boundary.eml",
		shape: "multipart/mixed(text/plain text/html)",
		env: Envelope{
			Subject: "missing final boundary",
			From:    []Address{{"", "broken", "example.com"}},
			To:      []Address{{"", "you", "example.com"}},
		},
		parts: []partWant{
			{path: "1", media: "text/plain", body: str("part one"), lines: 0},
			// The last part extends to EOF, final line break included.
			{path: "2", media: "text/html", body: str(crlf("<p>part two never ends\n")), lines: 1},
		},
	},
	{
		file:  "broken-no-boundary.eml",
		shape: "text/plain", // multipart without boundary is text
		env: Envelope{
			Subject: "no boundary",
			From:    []Address{{"", "broken", "example.com"}},
			To:      []Address{{"", "you", "example.com"}},
		},
		parts: []partWant{{path: "1", media: "text/plain", lines: 5,
			body: str(crlf("--whatever\nContent-Type: text/plain\n\ntext\n--whatever--\n"))}},
	},
	{
		file:  "broken-garbage.eml",
		shape: "text/plain", // "Content-Type: text" is invalid
		env: Envelope{
			Subject: "Résumé 8-bit raw header", // Windows-1252 guess
			From:    []Address{{"Jörg", "joerg", "example.de"}},
			To:      []Address{{"", "undisclosed-recipients", ""}, {}},
			Cc: []Address{
				{"", "Team", ""},
				{"", "a", "example.com"},
				{"B", "b", "example.com"},
				{},
			},
			Bcc: []Address{
				{"", "c", "example.com"},
				{"Dee", "d", "example.com"},
				{"", "plainname", MissingDomain},
			},
		},
		parts: []partWant{{path: "1", media: "text/plain", lines: 1, params: map[string]string{"charset": "us-ascii"},
			body: str(crlf("Body of a message with a bad Content-Type.\n"))}},
	},
	{
		file:  "broken-truncated.eml",
		shape: "text/plain", // Content-Type cut in the middle: no boundary
		env: Envelope{
			Subject: "truncated",
			From:    []Address{{"", "trunc", "example.com"}},
			To:      []Address{{"", "x", "example.com"}},
		},
		header: str("From: trunc@example.com\r\nTo: x@example.com\r\nSubject: truncated\r\nContent-Type: multipart/mixed; bou"),
		text:   str(""),
		parts:  []partWant{{path: "1", media: "text/plain", body: str(""), lines: 0}},
	},
	{
		file:  "digest.eml",
		shape: "multipart/digest(message/rfc822[text/plain] message/rfc822[text/plain] text/plain)",
		env: Envelope{
			Subject: "Digest Vol 1, Issue 1",
			From:    []Address{{"", "list", "example.org"}},
			To:      []Address{{"", "member", "example.com"}},
		},
		parts: []partWant{
			{path: "1", media: "message/rfc822", mime: str("\r\n"), lines: 3,
				body: str(crlf("From: a@example.org\nSubject: first\n\none"))},
			{path: "1.1", media: "text/plain", body: str("one"), lines: 0},
			{path: "2.1", media: "text/plain", body: str("two"), lines: 0},
			{path: "3", media: "text/plain", body: str("not a message"), lines: 0},
		},
	},
}

func TestStructure(t *testing.T) {
	for _, tt := range structureTests {
		t.Run(tt.file, func(t *testing.T) {
			msg := readTestdata(t, tt.file)
			s := mustParse(t, msg)
			if got := shape(s.Root); got != tt.shape {
				t.Errorf("shape = %s, want %s", got, tt.shape)
			}
			checkEnvelope(t, "envelope", &s.Envelope, &tt.env)
			if s.Size != int64(len(msg)) {
				t.Errorf("Size = %d, want %d", s.Size, len(msg))
			}
			if tt.header != nil {
				if got, _ := section(t, msg, s, "", "HEADER"); got != *tt.header {
					t.Errorf("BODY[HEADER] = %q, want %q", got, *tt.header)
				}
			}
			if tt.text != nil {
				if got, _ := section(t, msg, s, "", "TEXT"); got != *tt.text {
					t.Errorf("BODY[TEXT] = %q, want %q", got, *tt.text)
				}
			}
			for _, pw := range tt.parts {
				p, ok := s.Part(parsePath(t, pw.path))
				if !ok {
					t.Errorf("part %s not found", pw.path)
					continue
				}
				if got := p.MediaType(); got != pw.media {
					t.Errorf("part %s: media type %s, want %s", pw.path, got, pw.media)
				}
				if pw.body != nil {
					if got, _ := section(t, msg, s, pw.path, ""); got != *pw.body {
						t.Errorf("BODY[%s] = %q, want %q", pw.path, got, *pw.body)
					}
				}
				if pw.mime != nil {
					if got, _ := section(t, msg, s, pw.path, "MIME"); got != *pw.mime {
						t.Errorf("BODY[%s.MIME] = %q, want %q", pw.path, got, *pw.mime)
					}
				}
				if pw.lines >= 0 && p.Lines != pw.lines {
					t.Errorf("part %s: Lines = %d, want %d", pw.path, p.Lines, pw.lines)
				}
				if pw.lines >= 0 {
					body := msg[p.BodyStart:p.End]
					if n := int64(bytes.Count(body, []byte("\n"))); n != p.Lines {
						t.Errorf("part %s: Lines = %d but body has %d LFs", pw.path, p.Lines, n)
					}
				}
				if pw.params != nil && !(len(pw.params) == 0 && p.Params == nil) && !reflect.DeepEqual(p.Params, pw.params) {
					t.Errorf("part %s: Params = %v, want %v", pw.path, p.Params, pw.params)
				}
				if pw.encoding != "" && p.Encoding != pw.encoding {
					t.Errorf("part %s: Encoding = %q, want %q", pw.path, p.Encoding, pw.encoding)
				}
				if pw.disp != "" && p.Disposition != pw.disp {
					t.Errorf("part %s: Disposition = %q, want %q", pw.path, p.Disposition, pw.disp)
				}
				if pw.dparams != nil && !reflect.DeepEqual(p.DispositionParams, pw.dparams) {
					t.Errorf("part %s: DispositionParams = %v, want %v", pw.path, p.DispositionParams, pw.dparams)
				}
			}
		})
	}
}

func checkEnvelope(t *testing.T, what string, got, want *Envelope) {
	t.Helper()
	if !got.Date.Equal(want.Date) {
		t.Errorf("%s: Date = %v, want %v", what, got.Date, want.Date)
	} else {
		_, o1 := got.Date.Zone()
		_, o2 := want.Date.Zone()
		if o1 != o2 {
			t.Errorf("%s: Date zone offset = %d, want %d", what, o1, o2)
		}
	}
	g, w := *got, *want
	g.Date, w.Date = time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %+v\nwant %+v", what, g, w)
	}
}

func TestNestedSections(t *testing.T) {
	msg := readTestdata(t, "nested-rfc822.eml")
	s := mustParse(t, msg)

	p, _ := s.Part([]int{2})
	if !p.IsMessage() || p.Envelope.Subject != "Project plan" || p.Envelope.MessageID != "plan@example.org" {
		t.Fatalf("part 2 is not the embedded message: %+v", p)
	}
	hdr, ok := section(t, msg, s, "2", "HEADER")
	if !ok || !strings.HasPrefix(hdr, "From: Erin") || !strings.HasSuffix(hdr, "boundary=\"inner-ABC\"\r\n\r\n") {
		t.Errorf("BODY[2.HEADER] = %q", hdr)
	}
	text, ok := section(t, msg, s, "2", "TEXT")
	if !ok || !strings.HasPrefix(text, "--inner-ABC\r\n") || !strings.HasSuffix(text, "--inner-ABC--") {
		t.Errorf("BODY[2.TEXT] = %q", text)
	}
	if hdr+text != string(msg[p.BodyStart:p.End]) {
		t.Errorf("BODY[2.HEADER] + BODY[2.TEXT] != BODY[2]")
	}
	if _, ok := section(t, msg, s, "1", "HEADER"); ok {
		t.Errorf("BODY[1.HEADER] of a text part should not exist")
	}
	for _, bad := range []string{"4", "0", "1.1", "2.3", "3.1", "2.1.1"} {
		if _, ok := s.Part(parsePath(t, bad)); ok {
			t.Errorf("part %s should not exist", bad)
		}
	}
	if _, _, ok := s.Section(nil, "MIME"); ok {
		t.Errorf("BODY[MIME] should not exist")
	}
	// HEADER.FIELDS uses the HEADER range; the caller filters it.
	h, _ := section(t, msg, s, "2", "header.fields (subject)")
	if got := string(FilterHeader([]byte(h), []string{"SUBJECT", "from"}, false)); got != "From: Erin <erin@example.org>\r\nSubject: Project plan\r\n\r\n" {
		t.Errorf("FilterHeader = %q", got)
	}

	var paths []string
	s.Walk(func(path []int, p *Part) bool {
		var ps []string
		for _, n := range path {
			ps = append(ps, strconv.Itoa(n))
		}
		paths = append(paths, strings.Join(ps, ".")+"="+p.MediaType())
		return true
	})
	want := "=multipart/mixed 1=text/plain 2=message/rfc822 2.1=text/plain 2.2=text/html 3=image/png"
	if got := strings.Join(paths, " "); got != want {
		t.Errorf("Walk: %s\nwant %s", got, want)
	}
	for _, w := range strings.Fields(want)[1:] {
		path, media, _ := strings.Cut(w, "=")
		if p, ok := s.Part(parsePath(t, path)); !ok || p.MediaType() != media {
			t.Errorf("Part(%s) disagrees with Walk", path)
		}
	}
}

func TestSinglePartNumbering(t *testing.T) {
	// A message whose body is a message/rfc822: 1 is its body, 1.1 the
	// embedded message's body, 1.HEADER its header.
	msg := []byte(crlf("Subject: outer\nContent-Type: message/rfc822\n\nSubject: inner\n\ninner body\n"))
	s := mustParse(t, msg)
	if got := shape(s.Root); got != "message/rfc822[text/plain]" {
		t.Fatalf("shape %s", got)
	}
	for _, c := range []struct{ path, spec, want string }{
		{"1", "", crlf("Subject: inner\n\ninner body\n")},
		{"1", "HEADER", crlf("Subject: inner\n\n")},
		{"1", "TEXT", crlf("inner body\n")},
		{"1.1", "", crlf("inner body\n")},
		{"1", "MIME", crlf("Subject: outer\nContent-Type: message/rfc822\n\n")},
	} {
		if got, ok := section(t, msg, s, c.path, c.spec); !ok || got != c.want {
			t.Errorf("BODY[%s.%s] = %q, %v; want %q", c.path, c.spec, got, ok, c.want)
		}
	}
	if _, ok := s.Part([]int{2}); ok {
		t.Errorf("part 2 of a single-part message exists")
	}
	if s.Root.Children[0] != mustPart(t, s, "1.1") || s.Envelope.Subject != "outer" || s.Root.Envelope.Subject != "inner" {
		t.Errorf("wrong embedded message")
	}
}

func mustPart(t *testing.T, s *Structure, path string) *Part {
	t.Helper()
	p, ok := s.Part(parsePath(t, path))
	if !ok {
		t.Fatalf("no part %s", path)
	}
	return p
}

func TestTextReader(t *testing.T) {
	for _, c := range []struct {
		file, path, want string
	}{
		{"latin1.eml", "1", "Voilà, un café crème.\r\n"},
		{"sjis.eml", "1", "こんにちは、世界。\r\n半角ｶﾀｶﾅも。\r\n"},
		{"alternative.eml", "1", "Große Rabatte – nur heute!\r\nAlle Schuhe 50% günstiger. Dieser Satz ist absichtlich sehr lang, damit er umbrochen wird."},
		{"rfc2231.eml", "2", "Hello World\n"},
		{"simple.eml", "1", crlf("Hi Bob,\n\nare we still on for lunch on Friday? The café on the corner\nhas a new menu.\n\nAlice\n")},
	} {
		msg := readTestdata(t, c.file)
		s := mustParse(t, msg)
		p := mustPart(t, s, c.path)
		got, err := io.ReadAll(TextReader(p, bytes.NewReader(msg[p.BodyStart:p.End])))
		if err != nil || string(got) != c.want {
			t.Errorf("%s %s: TextReader = %q, %v; want %q", c.file, c.path, got, err, c.want)
		}
	}

	msg := readTestdata(t, "mixed-attachment.eml")
	s := mustParse(t, msg)
	p := mustPart(t, s, "2")
	got, err := io.ReadAll(DecodeReader(p, bytes.NewReader(msg[p.BodyStart:p.End])))
	if want := readTestdata(t, "attachment.pdf"); err != nil || !bytes.Equal(got, want) {
		t.Errorf("DecodeReader of the attachment: %d bytes, %v; want %d bytes", len(got), err, len(want))
	}
}

func TestDecoders(t *testing.T) {
	for _, c := range []struct{ enc, in, want string }{
		{"base64", "SGVs\r\nbG8=\r\n", "Hello"},
		{"base64", "SGVsbG8=\nIHdvcmxk", "Hello world"}, // concatenated encodings
		{"base64", "SG Vs*bG\t8", "Hello"},              // junk and missing padding
		{"base64", "SGVsbA", "Hell"},                    // missing padding
		{"BASE64", "", ""},
		{"quoted-printable", "a=3Db =\r\nc=\nd   \r\ne=zz=4\r\n", "a=b cd\r\ne=zz=4\r\n"},
		{"Quoted-Printable", "caf=c3=a9", "café"},
		{"quoted-printable", "no newline at end=", "no newline at end"},
		{"7bit", "as is=3D\r\n", "as is=3D\r\n"},
		{"x-unknown", "as is", "as is"},
	} {
		p := &Part{Encoding: c.enc}
		got, err := io.ReadAll(DecodeReader(p, strings.NewReader(c.in)))
		if err != nil || string(got) != c.want {
			t.Errorf("%s %q: got %q, %v; want %q", c.enc, c.in, got, err, c.want)
		}
		// One byte at a time.
		got, err = io.ReadAll(DecodeReader(p, &oneByteReader{strings.NewReader(c.in)}))
		if err != nil || string(got) != c.want {
			t.Errorf("%s %q bytewise: got %q, %v; want %q", c.enc, c.in, got, err, c.want)
		}
	}
	// Long quoted-printable lines are decoded too.
	long := strings.Repeat("=41", 3000) + "\r\n"
	got, _ := io.ReadAll(DecodeReader(&Part{Encoding: "quoted-printable"}, strings.NewReader(long)))
	if string(got) != strings.Repeat("A", 3000)+"\r\n" {
		t.Errorf("long QP line decoded to %d bytes", len(got))
	}
	// Unknown charset: passed through.
	p := &Part{Params: map[string]string{"charset": "x-no-such-charset"}}
	if got, _ := io.ReadAll(TextReader(p, strings.NewReader("abc"))); string(got) != "abc" {
		t.Errorf("unknown charset: %q", got)
	}
}

type oneByteReader struct{ r io.Reader }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return r.r.Read(p[:1])
}
