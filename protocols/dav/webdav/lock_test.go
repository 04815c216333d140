package webdav

import (
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"kreide/store"
)

func lockBody(scope, owner string) string {
	return `<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:` + scope +
		`/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>` + owner + `</D:owner></D:lockinfo>`
}

// lock takes a lock and returns its token.
func (s *testServer) lock(t testing.TB, want int, path, scope string, hdr ...string) (string, string) {
	t.Helper()
	resp, body := s.expect(t, want, "LOCK", path, lockBody(scope, "<D:href>mailto:anna@example.org</D:href>"), hdr...)
	tok := strings.Trim(resp.Header.Get("Lock-Token"), "<>")
	if want < 300 && (!strings.HasPrefix(tok, "opaquelocktoken:") || !strings.Contains(body, tok)) {
		t.Fatalf("LOCK %s: token %q\n%s", path, tok, body)
	}
	return tok, body
}

func TestLockUnlock(t *testing.T) {
	s := newServer(t)
	s.expect(t, 201, "MKCOL", "/files/coll", "")
	s.expect(t, 201, "PUT", "/files/coll/doc.odt", "v1")
	tok, body := s.lock(t, 200, "/files/coll/doc.odt", "exclusive", "Depth", "0", "Timeout", "Second-600")
	for _, want := range []string{"<D:exclusive/>", "<D:depth>0</D:depth>", "Second-600", "mailto:anna@example.org", "<D:lockroot><D:href>/files/coll/doc.odt</D:href>"} {
		if !strings.Contains(body, want) {
			t.Fatalf("LOCK response lacks %q:\n%s", want, body)
		}
	}
	ifTok := "(<" + tok + ">)"

	// Everything that changes the resource needs the token: 423 without.
	s.lock(t, 423, "/files/coll/doc.odt", "exclusive")
	s.lock(t, 423, "/files/coll/doc.odt", "shared")
	s.lock(t, 423, "/files/coll", "exclusive")
	s.expect(t, 423, "PUT", "/files/coll/doc.odt", "v2")
	s.expect(t, 423, "DELETE", "/files/coll/doc.odt", "")
	s.expect(t, 423, "DELETE", "/files/coll", "")
	s.expect(t, 423, "MOVE", "/files/coll/doc.odt", "", "Destination", "/files/x")
	s.expect(t, 201, "PUT", "/files/other", "o")
	s.expect(t, 423, "COPY", "/files/other", "", "Destination", "/files/coll/doc.odt")
	s.expect(t, 423, "PROPPATCH", "/files/coll/doc.odt", `<propertyupdate xmlns="DAV:"><set><prop><a xmlns="urn:a">1</a></prop></set></propertyupdate>`)
	s.expect(t, 201, "COPY", "/files/coll/doc.odt", "", "Destination", "/files/copy.odt") // reading is fine
	s.expect(t, 201, "PUT", "/files/coll/sibling", "depth 0 lock on a file says nothing about its folder")

	// With it, they work; a wrong etag or token in the If header fails with 412.
	s.expect(t, 204, "PUT", "/files/coll/doc.odt", "v2", "If", ifTok)
	s.expect(t, 204, "PUT", "/files/coll/doc.odt", "v3", "If", "<"+s.files+"coll/doc.odt> "+ifTok)
	s.expect(t, 204, "PUT", "/files/coll/doc.odt", "v4", "If", "</files/coll/doc.odt> "+ifTok)
	s.expect(t, 412, "PUT", "/files/coll/doc.odt", "v5", "If", "(<DAV:no-lock>)")
	s.expect(t, 412, "PUT", "/files/coll/doc.odt", "v5", "If", `(<`+tok+`> ["wrong"])`)
	s.expect(t, 423, "PUT", "/files/coll/doc.odt", "v5", "If", "(<"+tok+"x>) (Not <DAV:no-lock>)")
	s.expect(t, 400, "PUT", "/files/coll/doc.odt", "v5", "If", "(<"+tok)
	resp, _ := s.expect(t, 200, "GET", "/files/coll/doc.odt", "")
	s.expect(t, 204, "PUT", "/files/coll/doc.odt", "v5", "If", "(<"+tok+"> ["+resp.Header.Get("ETag")+"]) (Not <DAV:no-lock>)")

	// Discovery.
	_, got := s.expect(t, 207, "PROPFIND", "/files/coll/doc.odt", `<propfind xmlns="DAV:"><prop><lockdiscovery/></prop></propfind>`, "Depth", "0")
	if !strings.Contains(got, tok) {
		t.Fatalf("lockdiscovery: %s", got)
	}

	// Refresh: needs the token; the new timeout shows.
	_, got = s.expect(t, 200, "LOCK", "/files/coll/doc.odt", "", "If", ifTok, "Timeout", "Second-1200")
	if !strings.Contains(got, "Second-1200") || !strings.Contains(got, tok) {
		t.Fatalf("refresh: %s", got)
	}
	s.expect(t, 412, "LOCK", "/files/coll/doc.odt", "", "If", "(<opaquelocktoken:nope>)")
	s.expect(t, 400, "LOCK", "/files/coll/doc.odt", "")

	// Unlock: a wrong token or a resource the lock does not cover is 409.
	s.expect(t, 409, "UNLOCK", "/files/coll/doc.odt", "", "Lock-Token", "<opaquelocktoken:nope>")
	s.expect(t, 409, "UNLOCK", "/files/coll", "", "Lock-Token", "<"+tok+">")
	s.expect(t, 400, "UNLOCK", "/files/coll/doc.odt", "")
	s.expect(t, 204, "UNLOCK", "/files/coll/doc.odt", "", "Lock-Token", "<"+tok+">")
	s.expect(t, 204, "PUT", "/files/coll/doc.odt", "free")

	// Shared locks stack; a depth-infinity lock on a folder covers new members.
	t1, _ := s.lock(t, 200, "/files/coll", "shared")
	t2, _ := s.lock(t, 200, "/files/coll", "shared")
	s.lock(t, 423, "/files/coll/doc.odt", "exclusive")
	s.expect(t, 423, "PUT", "/files/coll/new.txt", "x", "If", "(<"+t1+">)")
	s.expect(t, 201, "PUT", "/files/coll/new.txt", "x", "If", "</files/coll/> (<"+t1+">) (<"+t2+">)")
	// Indirect refresh through a member.
	s.expect(t, 200, "LOCK", "/files/coll/new.txt", "", "If", "(<"+t1+">)")
	s.expect(t, 204, "UNLOCK", "/files/coll/new.txt", "", "Lock-Token", "<"+t1+">")
	s.expect(t, 204, "UNLOCK", "/files/coll", "", "Lock-Token", "<"+t2+">")

	// Bad requests.
	s.expect(t, 400, "LOCK", "/files/coll", lockBody("exclusive", ""), "Depth", "1")
	s.expect(t, 400, "LOCK", "/files/coll", `<lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope></lockinfo>`)
	s.expect(t, 400, "LOCK", "/files/coll", `<lockinfo xmlns="DAV:"><locktype><write/></locktype></lockinfo>`)
	s.expect(t, 409, "LOCK", "/files/none/x", lockBody("exclusive", ""))
}

func TestLockNullAndPersistence(t *testing.T) {
	s := newServer(t)
	// LOCK on an unmapped URL makes an empty, locked file (201) ...
	tok, _ := s.lock(t, 201, "/files/new.docx", "exclusive")
	_, got := s.expect(t, 207, "PROPFIND", "/files/", "", "Depth", "1")
	if _, ok := parseMultistatus(t, got)["/files/new.docx"]; !ok {
		t.Fatal("locked empty resource not listed")
	}
	s.expect(t, 423, "PUT", "/files/new.docx", "x")
	// ... that disappears if it is unlocked before anything was written.
	s.expect(t, 204, "UNLOCK", "/files/new.docx", "", "Lock-Token", "<"+tok+">")
	s.expect(t, 404, "GET", "/files/new.docx", "")
	// Written, it stays (Windows Office: LOCK, PUT, UNLOCK).
	tok, _ = s.lock(t, 201, "/files/new.docx", "exclusive")
	s.expect(t, 204, "PUT", "/files/new.docx", "content", "If", "(<"+tok+">)")
	s.expect(t, 204, "UNLOCK", "/files/new.docx", "", "Lock-Token", "<"+tok+">")
	s.expect(t, 200, "GET", "/files/new.docx", "")

	// Locks survive a restart of the store.
	tok, _ = s.lock(t, 200, "/files/new.docx", "exclusive")
	dir := s.d.Dir()
	s.Close()
	s.d.Close()
	d2, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	srv := httptest.NewServer(newHandlerFor(d2, 0))
	defer srv.Close()
	s2 := &testServer{Server: srv, d: d2, files: srv.URL + "/files/"}
	s2.expect(t, 423, "DELETE", "/files/new.docx", "")
	s2.expect(t, 204, "DELETE", "/files/new.docx", "", "If", "(<"+tok+">)")
}

func TestParseIf(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []ifList
	}{
		{"(<opaquelocktoken:a>)", []ifList{{conds: []ifCond{{token: "opaquelocktoken:a"}}}}},
		{` (<urn:x> ["e1"]) (Not <DAV:no-lock> [W/"e2"])`, []ifList{
			{conds: []ifCond{{token: "urn:x"}, {etag: `"e1"`}}},
			{conds: []ifCond{{not: true, token: "DAV:no-lock"}, {etag: `W/"e2"`}}},
		}},
		{`<http://h/files/a> (<t1>) (["x]y"]) </files/b> (Not<t2>)`, []ifList{
			{tag: "http://h/files/a", conds: []ifCond{{token: "t1"}}},
			{tag: "http://h/files/a", conds: []ifCond{{etag: `"x]y"`}}},
			{tag: "/files/b", conds: []ifCond{{not: true, token: "t2"}}},
		}},
	} {
		got, err := parseIf(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %+v %v", c.in, got, err)
		}
	}
	for _, bad := range []string{"", "()", "(", "(<a>", "<a>", "(<a>) <b> (<c>)", "(x)", `(["e)`, "([e])", "(Not)", "junk"} {
		if _, err := parseIf(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseTimeout(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"": time.Hour, "Second-600": 10 * time.Minute, "Infinite, Second-4100000000": time.Hour,
		"Second-99999999999": time.Hour, "bogus, Second-30": 30 * time.Second, "Second-0": time.Hour,
	} {
		if got := parseTimeout(in); got != want {
			t.Errorf("%q: %v, want %v", in, got, want)
		}
	}
}

func FuzzParseIf(f *testing.F) {
	for _, s := range []string{"(<opaquelocktoken:a>)", `<http://h/x> (Not <DAV:no-lock> ["e"]) (<t>)`, `(W/"x")`, "(Not"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lists, err := parseIf(s)
		if err == nil && len(lists) == 0 {
			t.Fatal("no lists and no error")
		}
	})
}

func FuzzParseXML(f *testing.F) {
	for _, s := range []string{
		`<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><x:a xmlns:x="urn:x" x:b="1">t</x:a></D:prop></D:propfind>`,
		`<propertyupdate xmlns="DAV:"><set><prop><n xmlns="">v</n></prop></set></propertyupdate>`,
		`<!DOCTYPE a><a/>`, `<a xmlns:p=""/>`, `<a>&#65536;</a>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseXML(strings.NewReader(s))
		if err != nil {
			return
		}
		// A fragment we produce must parse again, as part of a response.
		frag := e.fragment()
		if _, err := parseXML(strings.NewReader("<r>" + string(frag) + "</r>")); err != nil {
			t.Fatalf("fragment %q of %q does not parse: %v", frag, s, err)
		}
	})
}
