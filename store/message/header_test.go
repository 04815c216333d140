package message

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDecodeHeaderText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{"=?ISO-8859-1?Q?a?=", "a"},
		{"=?ISO-8859-1?Q?a?= b", "a b"},
		{"=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=", "ab"}, // RFC 2047 section 8
		{"=?ISO-8859-1?Q?a?=  \r\n  =?ISO-8859-1?Q?b?=", "ab"},
		{"=?ISO-8859-1?Q?a_b?=", "a b"},
		{"=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=", "a b"},
		{"(=?ISO-8859-1?Q?a?=)", "(a)"},
		{"=?utf-8?b?w6k=?=", "é"},
		{"=?utf-8?B?w6k?=", "é"},                       // missing padding
		{"=?UTF-8*en?Q?caf=C3=A9?=", "café"},           // RFC 2231 language
		{"=?utf-8?q?caf=C3?= =?utf-8?q?=A9?=", "café"}, // character split across words
		{"=?windows-1252?q?=80_5?=", "€ 5"},
		{"=?koi8-r?B?8NLJ18XU?=", "Привет"},
		{"=?iso-2022-jp?B?GyRCRnxLXDhsGyhC?=", "日本語"},
		{"=?gb2312?B?1tDOxA==?=", "中文"},
		{"Re:=?utf-8?q?x?=", "Re:x"},
		{"=?x-no-such?q?abc?=", "abc"},
		{"=?x-no-such?q?a=FFb?=", "a\uFFFDb"},
		{"=?utf-8?x?abc?=", "=?utf-8?x?abc?="}, // unknown encoding
		{"=?utf-8?q?unterminated", "=?utf-8?q?unterminated"},
		{"=??q?abc?=", "=??q?abc?="},
		{"a =?utf-8?b?!!!?= b", "a =?utf-8?b?!!!?= b"}, // bad base64
		{"raw \xff bytes", "raw \uFFFD bytes"},
		{"=?utf-8?q?a?==?utf-8?q?b?=", "ab"},
		{"=?", "=?"},
		{"=?utf-8?q?what??=", "what?"},                   // stray '?' (lenient)
		{"=?utf-8?q?a?b=?utf-8?q?c?=", "=?utf-8?q?a?bc"}, // not swallowing the next word
		{"=?utf-8?q?a?b c?=", "=?utf-8?q?a?b c?="},
		{"=?utf-8?q?", "=?utf-8?q?"},
	} {
		if got := DecodeHeaderText(c.in); got != c.want {
			t.Errorf("DecodeHeaderText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestParseAddressList(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []Address
	}{
		{"a@example.com", []Address{{"", "a", "example.com"}}},
		{"John Doe <jdoe@machine.example>", []Address{{"John Doe", "jdoe", "machine.example"}}},
		{`"Joe Q. Public" <john.q.public@example.com>`, []Address{{"Joe Q. Public", "john.q.public", "example.com"}}},
		{`Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>`, []Address{
			{"Mary Smith", "mary", "x.test"}, {"", "jdoe", "example.org"}, {"Who?", "one", "y.test"}}},
		{`<boss@nil.test>, "Giant; \"Big\" Box" <sysservices@example.net>`, []Address{
			{"", "boss", "nil.test"}, {`Giant; "Big" Box`, "sysservices", "example.net"}}},
		{`A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;`, []Address{
			{"", "A Group", ""}, {"Ed Jones", "c", "a.test"}, {"", "joe", "where.test"}, {"John", "jdoe", "one.test"}, {}}},
		{`Undisclosed recipients:;`, []Address{{"", "Undisclosed recipients", ""}, {}}},
		{`Pete(A nice \) chap) <pete(his account)@silly.test(his host)>`, []Address{{"Pete", "pete", "silly.test"}}},
		{`jdoe@example.org (John Doe)`, []Address{{"John Doe", "jdoe", "example.org"}}},
		{`"john doe"@example.org`, []Address{{"", `"john doe"`, "example.org"}}},
		{`"john"@example.org`, []Address{{"", "john", "example.org"}}},
		{`<@route1,@route2:user@host.test>`, []Address{{"", "user", "host.test"}}},
		{`=?utf-8?q?J=C3=B6rg?= <j@x.test>`, []Address{{"Jörg", "j", "x.test"}}},
		{`"=?utf-8?q?J=C3=B6rg?=" <j@x.test>`, []Address{{"Jörg", "j", "x.test"}}},
		{`Jörg Müller <jm@x.test>`, []Address{{"Jörg Müller", "jm", "x.test"}}},
		{`user@[192.0.2.1]`, []Address{{"", "user", "[192.0.2.1]"}}},
		{`Name <user>`, []Address{{"Name", "user", MissingDomain}}},
		{`Name <@host.test>`, []Address{{"Name", MissingMailbox, "host.test"}}},
		{`<>`, nil},
		{`Name <>`, []Address{{"Name", MissingMailbox, MissingDomain}}},
		{`, ,a@b.test,,`, []Address{{"", "a", "b.test"}}},
		{`a@b.test c@d.test`, []Address{{"", "a", "b.test"}, {"", "c", "d.test"}}},
		{`Unterminated <a@b.test, c@d.test`, []Address{{"Unterminated", "a", "b.test"}, {"", "c", "d.test"}}},
		{`"unterminated <a@b.test>`, []Address{{"", `"unterminated <a@b.test>"`, MissingDomain}}},
		{`G: a@b.test`, []Address{{"", "G", ""}, {"", "a", "b.test"}, {}}}, // group without ';'
		{`G: H: a@b.test;`, []Address{{"", "G", ""}, {"", "a", "b.test"}, {}}},
		{`:;`, []Address{{"", MissingMailbox, ""}, {}}},
		{`a@example.com (=?utf-8?q?=C3=A9?=)`, []Address{{"é", "a", "example.com"}}},
		{"", nil},
		{">>><<<@@@;;;:::", nil},
	} {
		got := parseAddressList(c.in)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseAddressList(%q) =\n%+v\nwant %+v", c.in, got, c.want)
		}
		for _, a := range got {
			if a.Host == "" && a.Mailbox == "" && a.Name != "" {
				t.Errorf("%q: group end marker with a name", c.in)
			}
		}
	}
}

func TestParseDate(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Fri, 21 Nov 1997 09:55:06 -0600", "1997-11-21T09:55:06-06:00"},
		{"21 Nov 97 09:55:06 GMT", "1997-11-21T09:55:06Z"},
		{"Thu, 13 Feb 1969 23:32:54 -0330", "1969-02-13T23:32:54-03:30"},
		{"Thu,\r\n 13\r\n  Feb\r\n    1969\r\n  23:32\r\n   -0330 (Newfoundland Time)", "1969-02-13T23:32:00-03:30"},
		{"Tue, 1 Jul 2003 10:52:37 +0200", "2003-07-01T10:52:37+02:00"},
		{"Mon, 2 Jan 2006 15:04:05 PST", "2006-01-02T15:04:05-08:00"},
		{"Mon, 2 Jan 2006 15:04:05 EDT", "2006-01-02T15:04:05-04:00"},
		{"Mon, 2 Jan 2006 15:04:05 +01:00", "2006-01-02T15:04:05+01:00"},
		{"Mon, 2 Jan 2006 15:04:05", "2006-01-02T15:04:05Z"},
		{"Mon, 2 Jan 2006 15:04:05 -0000", "2006-01-02T15:04:05Z"},
		{"Mon, 2 Jan 2006 15:04:05 +0000 (UTC)", "2006-01-02T15:04:05Z"},
		{"Mon Jan  2 15:04:05 2006", "2006-01-02T15:04:05Z"},
		{"2 January 2006 15:04 +0100", "2006-01-02T15:04:00+01:00"},
		{"Mon, 02 Jan 06 15:04:05 A", "2006-01-02T15:04:05Z"},
		{"Sat, 31 Dec 1999 23:59:60 +0000", "2000-01-01T00:00:00Z"},
		{"1 Jan 0001 00:00:00 +0100", ""},
		{"this is not a date", ""},
		{"", ""},
		{"32 Jan 2006 15:04:05", ""},
		{"2 Jan 2006 25:04:05", ""},
		{"2006-01-02T15:04:05Z", ""},
	} {
		got := parseDate(c.in)
		if c.want == "" {
			if !got.IsZero() {
				t.Errorf("parseDate(%q) = %v, want zero", c.in, got)
			}
			continue
		}
		want, _ := time.Parse(time.RFC3339, c.want)
		_, o1 := got.Zone()
		_, o2 := want.Zone()
		if !got.Equal(want) || o1 != o2 {
			t.Errorf("parseDate(%q) = %v, want %v", c.in, got, want)
		}
	}
}

func TestContentType(t *testing.T) {
	for _, c := range []struct {
		in        string
		typ, sub  string
		params    map[string]string
		wantValid bool
	}{
		{`text/plain`, "text", "plain", nil, true},
		{`Text/HTML; Charset="UTF-8"`, "text", "html", map[string]string{"charset": "UTF-8"}, true},
		{`multipart/mixed; boundary="----=_Part_1=?x?="`, "multipart", "mixed", map[string]string{"boundary": "----=_Part_1=?x?="}, true},
		{`multipart/mixed; boundary=----=_NextPart_000_0001_01D0`, "multipart", "mixed", map[string]string{"boundary": "----=_NextPart_000_0001_01D0"}, true},
		{`multipart/mixed boundary=foo`, "multipart", "mixed", map[string]string{"boundary": "foo"}, true},
		{`text / plain ; charset = us-ascii (Plain text)`, "text", "plain", map[string]string{"charset": "us-ascii"}, true},
		{`application/x-stuff; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A`, "application", "x-stuff",
			map[string]string{"title": "This is ***fun***"}, true},
		{`application/x-stuff; title*0*=us-ascii'en'This%20is%20even%20more%20; title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2="isn't it!"`,
			"application", "x-stuff", map[string]string{"title": "This is even more ***fun*** isn't it!"}, true},
		{`a/b; name*1="b"; name*0="a"; name*3="gap"`, "a", "b", map[string]string{"name": "ab"}, true},
		{`a/b; name="plain"; name*=utf-8''%E2%82%AC`, "a", "b", map[string]string{"name": "€"}, true},
		{`a/b; name*=iso-8859-1''%E9%zz%`, "a", "b", map[string]string{"name": "é%zz%"}, true},
		{`a/b; name*=noquotes%41`, "a", "b", map[string]string{"name": "noquotesA"}, true},
		{`a/b; name="=?utf-8?B?w6kucGRm?="`, "a", "b", map[string]string{"name": "é.pdf"}, true},
		{`a/b; name="a\"b\\c"`, "a", "b", map[string]string{"name": `a"b\c`}, true},
		{`a/b; name="unterminated`, "a", "b", map[string]string{"name": "unterminated"}, true},
		{`a/b; x=1; x=2; ;; =3; y; z=`, "a", "b", map[string]string{"x": "1", "z": ""}, true},
		{`a/b; charset=iso-8859-1; name="caf` + "\xe9" + `"`, "a", "b", map[string]string{"charset": "iso-8859-1", "name": "café"}, true},
		{`text`, "text", "", nil, false},
		{`text/`, "text", "", nil, false},
		{`/plain; charset=utf-8`, "", "plain", map[string]string{"charset": "utf-8"}, false},
		{`garbage here; charset=utf-8`, "garbage", "", map[string]string{"charset": "utf-8"}, false},
		{`t` + "\xe9" + `xt/plain`, "t\uFFFDxt", "plain", nil, false},
		{``, "", "", nil, false},
	} {
		typ, sub, params, ok := parseContentType(c.in)
		if typ != c.typ || sub != c.sub || ok != c.wantValid || !reflect.DeepEqual(params, c.params) {
			t.Errorf("parseContentType(%q) = %q %q %v %v; want %q %q %v %v", c.in, typ, sub, params, ok, c.typ, c.sub, c.params, c.wantValid)
		}
	}
}

func TestMsgIDs(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"<a@b>", []string{"a@b"}},
		{"<a@b> <c@d>", []string{"a@b", "c@d"}},
		{"<a@b>\r\n\t<c@d> (comment)", []string{"a@b", "c@d"}},
		{"a@b", []string{"a@b"}},
		{"Your message of yesterday", nil},
		{"<a @ b>", []string{"a@b"}},
		{"<>", nil},
		{"<unterminated", nil},
	} {
		if got := parseMsgIDs(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseMsgIDs(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestHeaderHelpers(t *testing.T) {
	hdr := []byte("Subject: =?utf-8?q?caf=C3=A9?=\r\n  au lait\r\nX-A: 1\r\nnot a field\r\nx-a: 2\r\nTo: a@b\r\n\r\n")
	if got := HeaderValues(hdr, "x-A"); !reflect.DeepEqual(got, []string{"1", "2"}) {
		t.Errorf("HeaderValues = %q", got)
	}
	if got := HeaderValues(hdr, "subject"); !reflect.DeepEqual(got, []string{"café  au lait"}) {
		t.Errorf("HeaderValues = %q", got)
	}
	if got := string(FilterHeader(hdr, []string{"x-a"}, false)); got != "X-A: 1\r\nx-a: 2\r\n\r\n" {
		t.Errorf("FilterHeader = %q", got)
	}
	if got := string(FilterHeader(hdr, []string{"x-a", "TO"}, true)); got != "Subject: =?utf-8?q?caf=C3=A9?=\r\n  au lait\r\n\r\n" {
		t.Errorf("FilterHeader NOT = %q", got)
	}
	if got := string(FilterHeader([]byte("A: 1\nB: 2"), []string{"b"}, false)); got != "B: 2\n\n" {
		t.Errorf("FilterHeader LF = %q", got)
	}
	if got := string(FilterHeader(nil, []string{"b"}, false)); got != "\r\n" {
		t.Errorf("FilterHeader empty = %q", got)
	}
}

func TestFieldLengthCap(t *testing.T) {
	subject := strings.Repeat("é", maxFieldLen) // 2 bytes each
	s := mustParse(t, []byte("Subject: "+subject+"\r\n\r\n"))
	if got := s.Envelope.Subject; len(got) != maxFieldLen || !strings.HasPrefix(subject, got) {
		t.Errorf("subject of %d bytes kept as %d bytes", len(subject), len(got))
	}
	if got := truncateUTF8("aé", 2); got != "a" {
		t.Errorf("truncateUTF8 = %q", got)
	}
}
