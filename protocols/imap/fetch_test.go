package imap

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// fetchOne fetches one message by UID and fails the test on error.
func fetchOne(t *testing.T, c *imapclient.Client, uid imap.UID, opts *imap.FetchOptions) *imapclient.FetchMessageBuffer {
	t.Helper()
	msgs, err := c.Fetch(imap.UIDSetNum(uid), opts).Collect()
	if err != nil {
		t.Fatalf("UID FETCH %d: %v", uid, err)
	}
	if len(msgs) != 1 {
		t.Fatalf("UID FETCH %d: %d messages", uid, len(msgs))
	}
	return msgs[0]
}

// body fetches one BODY.PEEK section.
func body(t *testing.T, c *imapclient.Client, uid imap.UID, sec *imap.FetchItemBodySection) []byte {
	t.Helper()
	sec.Peek = true
	m := fetchOne(t, c, uid, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{sec}})
	b := m.FindBodySection(sec)
	if b == nil && len(m.BodySection) != 1 {
		t.Fatalf("no body section in response: %+v", m)
	}
	return b
}

// binary fetches one BINARY.PEEK section.
func binary(t *testing.T, c *imapclient.Client, uid imap.UID, part []int, p *imap.SectionPartial) []byte {
	t.Helper()
	sec := &imap.FetchItemBinarySection{Part: part, Partial: p, Peek: true}
	m := fetchOne(t, c, uid, &imap.FetchOptions{BinarySection: []*imap.FetchItemBinarySection{sec}})
	return m.FindBinarySection(sec)
}

func headerEnd(raw []byte) int { return bytes.Index(raw, []byte("\r\n\r\n")) + 4 }

func TestFetchNested(t *testing.T) {
	e := newEnv(t)
	c := e.selectInbox(nil)
	raw := fixture(t, "nested.eml")
	date := time.Date(2023, 3, 14, 9, 0, 0, 0, time.FixedZone("", 3600))
	uid := appendMsg(t, c, "INBOX", raw, &imap.AppendOptions{Flags: []imap.Flag{imap.FlagFlagged, "$Label1"}, Time: date})

	m := fetchOne(t, c, uid, &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, RFC822Size: true,
		Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true}})
	if m.UID != uid {
		t.Errorf("UID %d, APPENDUID said %d", m.UID, uid)
	}
	if !slices.Contains(m.Flags, imap.FlagFlagged) || !slices.Contains(m.Flags, "$Label1") || slices.Contains(m.Flags, imap.FlagSeen) {
		t.Errorf("FLAGS %v", m.Flags)
	}
	if !m.InternalDate.Equal(date) {
		t.Errorf("INTERNALDATE %v, want %v", m.InternalDate, date)
	}
	if m.RFC822Size != int64(len(raw)) {
		t.Errorf("RFC822.SIZE %d, want %d", m.RFC822Size, len(raw))
	}

	env := m.Envelope
	if env.Subject != "Wochenplan für die 7b" {
		t.Errorf("subject %q", env.Subject)
	}
	if len(env.From) != 1 || env.From[0].Name != "Jürgen Müller" || env.From[0].Addr() != "juergen@example.net" {
		t.Errorf("from %+v", env.From)
	}
	if len(env.To) != 2 || env.To[1].Name != "Team 7b" || len(env.Cc) != 1 || env.Cc[0].Addr() != "carol@example.org" {
		t.Errorf("to %+v cc %+v", env.To, env.Cc)
	}
	if env.MessageID != "nested-1@example.net" || !slices.Equal(env.InReplyTo, []string{"plan-0@example.net"}) {
		t.Errorf("message-id %q in-reply-to %q", env.MessageID, env.InReplyTo)
	}
	if !env.Date.Equal(time.Date(2023, 3, 14, 7, 30, 0, 0, time.UTC)) {
		t.Errorf("envelope date %v", env.Date)
	}

	root, ok := m.BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || root.MediaType() != "multipart/mixed" || len(root.Children) != 3 {
		t.Fatalf("BODYSTRUCTURE root %#v", m.BodyStructure)
	}
	alt, ok := root.Children[0].(*imap.BodyStructureMultiPart)
	if !ok || alt.MediaType() != "multipart/alternative" || len(alt.Children) != 2 {
		t.Fatalf("part 1 %#v", root.Children[0])
	}
	plain := alt.Children[0].(*imap.BodyStructureSinglePart)
	if plain.MediaType() != "text/plain" || plain.Params["charset"] != "utf-8" || !strings.EqualFold(plain.Encoding, "quoted-printable") ||
		plain.Text == nil || plain.Text.NumLines != 2 {
		t.Errorf("part 1.1 %#v text %+v", plain, plain.Text)
	}
	inner := root.Children[1].(*imap.BodyStructureSinglePart)
	if inner.MediaType() != "message/rfc822" || inner.MessageRFC822 == nil || inner.MessageRFC822.Envelope.Subject != "Termine" {
		t.Fatalf("part 2 %#v", inner)
	}
	if mp, ok := inner.MessageRFC822.BodyStructure.(*imap.BodyStructureMultiPart); !ok || len(mp.Children) != 2 ||
		mp.Children[1].(*imap.BodyStructureSinglePart).Filename() != "termine.pdf" {
		t.Errorf("part 2 structure %#v", inner.MessageRFC822.BodyStructure)
	}
	png := root.Children[2].(*imap.BodyStructureSinglePart)
	if png.MediaType() != "image/png" || png.Disposition() == nil || png.Disposition().Value != "attachment" || png.Filename() != "logo.png" {
		t.Errorf("part 3 %#v", png)
	}

	// BODY without extension data.
	m = fetchOne(t, c, uid, &imap.FetchOptions{BodyStructure: &imap.FetchItemBodyStructure{}})
	if bs, ok := m.BodyStructure.(*imap.BodyStructureMultiPart); !ok || len(bs.Children) != 3 || bs.Extended != nil {
		t.Errorf("BODY %#v", m.BodyStructure)
	}

	hdr := headerEnd(raw)
	pdf := []byte("%PDF-1.4\n%\xc7\xec\x8f\xa2\n1 0 obj\n<</Type/Catalog>>\nendobj\n%%EOF\n")
	pngBytes := make([]byte, 256)
	for i := range pngBytes {
		pngBytes[i] = byte(i)
	}
	sections := []struct {
		name string
		sec  *imap.FetchItemBodySection
		want string
	}{
		{"BODY[]", &imap.FetchItemBodySection{}, string(raw)},
		{"BODY[HEADER]", &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader}, string(raw[:hdr])},
		{"BODY[TEXT]", &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText}, string(raw[hdr:])},
		{"HEADER.FIELDS", &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"subject", "FROM"}},
			"From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.net>\r\nSubject: =?UTF-8?B?V29jaGVucGxhbiBmw7xyIGRpZSA3Yg==?=\r\n\r\n"},
		{"HEADER.FIELDS missing", &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"X-Nothing"}}, "\r\n"},
		{"1.1", &imap.FetchItemBodySection{Part: []int{1, 1}},
			"Hallo zusammen,\r\nder Wochenplan f=C3=BCr die 7b h=C3=A4ngt an.\r\nGr=C3=BC=C3=9Fe J=C3=BCrgen"},
		{"1.1.MIME", &imap.FetchItemBodySection{Part: []int{1, 1}, Specifier: imap.PartSpecifierMIME},
			"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"},
		{"2.1", &imap.FetchItemBodySection{Part: []int{2, 1}}, "Elternabend am Donnerstag."},
		{"partial", &imap.FetchItemBodySection{Partial: &imap.SectionPartial{Offset: 10, Size: 20}}, string(raw[10:30])},
		{"partial TEXT", &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText, Partial: &imap.SectionPartial{Offset: 5, Size: 9}}, string(raw[hdr+5 : hdr+14])},
		{"partial past the end", &imap.FetchItemBodySection{Partial: &imap.SectionPartial{Offset: 100000, Size: 10}}, ""},
		{"missing part", &imap.FetchItemBodySection{Part: []int{9}}, ""},
		{"HEADER of a non-message part", &imap.FetchItemBodySection{Part: []int{3}, Specifier: imap.PartSpecifierHeader}, ""},
	}
	for _, s := range sections {
		if got := body(t, c, uid, s.sec); string(got) != s.want {
			t.Errorf("%s = %q, want %q", s.name, got, s.want)
		}
	}
	not := body(t, c, uid, &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"X-Kreide-Test", "Cc"}})
	if bytes.Contains(not, []byte("X-Kreide-Test")) || bytes.Contains(not, []byte("\r\nCc:")) || !bytes.HasPrefix(not, []byte("From:")) || !bytes.HasSuffix(not, []byte("\r\n\r\n")) {
		t.Errorf("HEADER.FIELDS.NOT = %q", not)
	}
	h2 := body(t, c, uid, &imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierHeader})
	if !bytes.HasPrefix(h2, []byte("From: Schulleitung")) || !bytes.HasSuffix(h2, []byte("boundary=\"inner\"\r\n\r\n")) {
		t.Errorf("BODY[2.HEADER] = %q", h2)
	}
	t2 := body(t, c, uid, &imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierText})
	if !bytes.HasPrefix(t2, []byte("--inner\r\n")) || !bytes.HasSuffix(t2, []byte("--inner--\r\n")) {
		t.Errorf("BODY[2.TEXT] = %q", t2)
	}

	if got := binary(t, c, uid, []int{1, 1}, nil); string(got) != "Hallo zusammen,\r\nder Wochenplan für die 7b hängt an.\r\nGrüße Jürgen" {
		t.Errorf("BINARY[1.1] = %q", got)
	}
	if got := binary(t, c, uid, []int{2, 2}, nil); !bytes.Equal(got, pdf) {
		t.Errorf("BINARY[2.2] = %q", got)
	}
	if got := binary(t, c, uid, []int{3}, nil); !bytes.Equal(got, pngBytes) {
		t.Errorf("BINARY[3] = %x", got)
	}
	if got := binary(t, c, uid, []int{3}, &imap.SectionPartial{Offset: 250, Size: 100}); !bytes.Equal(got, pngBytes[250:]) {
		t.Errorf("BINARY[3]<250.100> = %x", got)
	}
	if got := binary(t, c, uid, nil, nil); !bytes.Equal(got, raw) {
		t.Errorf("BINARY[] differs from the message")
	}
	m = fetchOne(t, c, uid, &imap.FetchOptions{BinarySectionSize: []*imap.FetchItemBinarySectionSize{{Part: []int{3}}, {Part: []int{2, 2}}, {Part: []int{1, 1}}}})
	for part, want := range map[string]uint32{"3": 256, "2.2": uint32(len(pdf)), "1.1": uint32(len("Hallo zusammen,\r\nder Wochenplan für die 7b hängt an.\r\nGrüße Jürgen"))} {
		var path []int
		for _, p := range strings.Split(part, ".") {
			var n int
			fmt.Sscan(p, &n)
			path = append(path, n)
		}
		if got, ok := m.FindBinarySectionSize(path); !ok || got != want {
			t.Errorf("BINARY.SIZE[%s] = %d, %v; want %d", part, got, ok, want)
		}
	}

	// PEEK keeps \Seen unset; BODY[] sets it and reports the new flags.
	m = fetchOne(t, c, uid, &imap.FetchOptions{Flags: true})
	if slices.Contains(m.Flags, imap.FlagSeen) {
		t.Fatal("BODY.PEEK set \\Seen")
	}
	sec := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText}
	m = fetchOne(t, c, uid, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{sec}})
	if !slices.Contains(m.Flags, imap.FlagSeen) {
		t.Errorf("BODY[TEXT] response flags %v, want \\Seen included", m.Flags)
	}
	if string(m.FindBodySection(sec)) != string(raw[hdr:]) {
		t.Error("BODY[TEXT] wrong")
	}
}

func TestFetchCharsetsAndAttachments(t *testing.T) {
	e := newEnv(t)
	c := e.selectInbox(nil)
	latin1 := appendMsg(t, c, "INBOX", fixture(t, "latin1.eml"), nil)
	utf8 := appendMsg(t, c, "INBOX", fixture(t, "utf8.eml"), nil)
	att := appendMsg(t, c, "INBOX", fixture(t, "attachment.eml"), nil)

	opts := &imap.FetchOptions{Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true}}
	m := fetchOne(t, c, latin1, opts)
	if m.Envelope.Subject != "Grüße aus Köln" || m.Envelope.From[0].Name != "François Bérard" {
		t.Errorf("ISO-8859-1 envelope: subject %q from %+v", m.Envelope.Subject, m.Envelope.From)
	}
	if bs := m.BodyStructure.(*imap.BodyStructureSinglePart); !strings.EqualFold(bs.Params["charset"], "iso-8859-1") || bs.Encoding != "8bit" {
		t.Errorf("ISO-8859-1 structure %#v", bs)
	}
	// BINARY undoes transfer encodings, not charsets: the Latin-1 bytes stay.
	if got := binary(t, c, latin1, []int{1}, nil); !bytes.Contains(got, []byte("K\xe4se")) {
		t.Errorf("BINARY[1] of Latin-1 8bit = %q", got)
	}

	m = fetchOne(t, c, utf8, opts)
	if m.Envelope.Subject != "Ausflug 🚌 nach Überlingen" || m.Envelope.From[0].Name != "Zoë Ångström" {
		t.Errorf("UTF-8 envelope: subject %q from %+v", m.Envelope.Subject, m.Envelope.From)
	}
	want := "Liebe Eltern,\r\nder Ausflug nach Überlingen findet am Freitag statt. Bitte Regenjacke mitbringen ☔.\r\n"
	if got := binary(t, c, utf8, []int{1}, nil); string(got) != want {
		t.Errorf("BINARY[1] of base64 UTF-8 = %q", got)
	}
	// Partial BINARY counts decoded bytes.
	if got := binary(t, c, utf8, []int{1}, &imap.SectionPartial{Offset: 15, Size: 10}); string(got) != want[15:25] {
		t.Errorf("BINARY[1]<15.10> = %q, want %q", got, want[15:25])
	}

	m = fetchOne(t, c, att, opts)
	doc := m.BodyStructure.(*imap.BodyStructureMultiPart).Children[1].(*imap.BodyStructureSinglePart)
	if doc.Filename() != "Arbeitsblätter.docx" || doc.Subtype != "vnd.openxmlformats-officedocument.wordprocessingml.document" {
		t.Errorf("attachment %#v %#v", doc, doc.Extended)
	}
	if got := binary(t, c, att, []int{2}, nil); !bytes.Equal(got, fixture(t, "attachment.bin")) {
		t.Errorf("BINARY[2] = %q", got)
	}
}

func TestFetchBrokenMIME(t *testing.T) {
	e := newEnv(t)
	c := e.selectInbox(nil)
	raw := fixture(t, "broken.eml")
	uid := appendMsg(t, c, "INBOX", raw, nil)
	m := fetchOne(t, c, uid, &imap.FetchOptions{Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true}, RFC822Size: true})
	if m.RFC822Size != int64(len(raw)) || m.Envelope == nil || m.BodyStructure == nil {
		t.Fatalf("broken message: %+v", m)
	}
	if got := body(t, c, uid, &imap.FetchItemBodySection{}); !bytes.Equal(got, raw) {
		t.Errorf("BODY[] of broken message differs")
	}
	// An encoding BINARY cannot undo is refused with UNKNOWN-CTE (RFC 3516).
	_, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{BinarySection: []*imap.FetchItemBinarySection{{Part: []int{2}, Peek: true}}}).Collect()
	if imapCode(err) != imap.ResponseCodeUnknownCTE {
		t.Errorf("BINARY of x-uuencode: %v, want NO [UNKNOWN-CTE]", err)
	}
	// The connection still works.
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	if got := binary(t, c, uid, []int{1}, nil); !bytes.HasPrefix(got, []byte("Hello ")) {
		t.Errorf("lenient base64 BINARY[1] = %q", got)
	}
}

// TestFetchLarge checks seeking reads across the store's 64 KiB chunks: a
// 3 MB message, partial BODY and BINARY fetches from its middle.
func TestFetchLarge(t *testing.T) {
	e := newEnv(t)
	c := e.selectInbox(nil)
	rng := rand.New(rand.NewPCG(1, 2))
	att := make([]byte, 2<<20)
	for i := range att {
		att[i] = byte(rng.Uint32())
	}
	raw := bigMessage(att)
	uid := appendMsg(t, c, "INBOX", raw, nil)
	got := body(t, c, uid, &imap.FetchItemBodySection{Partial: &imap.SectionPartial{Offset: 1_000_003, Size: 200_000}})
	if !bytes.Equal(got, raw[1_000_003:1_200_003]) {
		t.Error("BODY[]<1000003.200000> differs")
	}
	if got := binary(t, c, uid, []int{2}, &imap.SectionPartial{Offset: 1_500_000, Size: 70_000}); !bytes.Equal(got, att[1_500_000:1_570_000]) {
		t.Error("BINARY[2]<1500000.70000> differs")
	}
	if got := binary(t, c, uid, []int{2}, nil); !bytes.Equal(got, att) {
		t.Error("BINARY[2] differs")
	}
	if got := body(t, c, uid, &imap.FetchItemBodySection{}); !bytes.Equal(got, raw) {
		t.Error("BODY[] differs")
	}
}

// bigMessage wraps att as a base64 attachment.
func bigMessage(att []byte) []byte {
	var b bytes.Buffer
	b.WriteString("From: Bob <bob@example.net>\r\nTo: alice@example.org\r\nSubject: big\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=xyz\r\n\r\n--xyz\r\nContent-Type: text/plain\r\n\r\nSee attachment.\r\n" +
		"--xyz\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	enc := encodeBase64Lines(att)
	b.Write(enc)
	b.WriteString("--xyz--\r\n")
	return b.Bytes()
}
