package webdav

import (
	"slices"
	"strings"
	"testing"
)

const namedProps = `<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:prop>
<D:getcontentlength/><D:getlastmodified/><D:creationdate/><D:getetag/><D:getcontenttype/><D:resourcetype/>
<D:displayname/><D:supportedlock/><D:lockdiscovery/><D:quota-available-bytes/><D:quota-used-bytes/>
<Z:Win32FileAttributes/><D:nosuchprop/></D:prop></D:propfind>`

func TestPropfind(t *testing.T) {
	s := newServer(t)
	s.expect(t, 201, "MKCOL", "/files/Klasse%205b", "")
	s.expect(t, 201, "PUT", "/files/Klasse%205b/plan.txt", "Stundenplan", "Content-Type", "text/plain")

	// Depth 1 on a folder: the folder and its members, 200 and 404 groups.
	_, body := s.expect(t, 207, "PROPFIND", "/files/Klasse%205b/", namedProps, "Depth", "1")
	ms := parseMultistatus(t, body)
	dir, file := ms["/files/Klasse%205b/"], ms["/files/Klasse%205b/plan.txt"]
	if len(ms) != 2 || dir == nil || file == nil {
		t.Fatalf("responses: %v", body)
	}
	for name, want := range map[string]string{
		"{DAV:}getcontentlength": "11", "{DAV:}getcontenttype": "text/plain", "{DAV:}displayname": "plan.txt",
		"{DAV:}resourcetype": "", "{DAV:}nosuchprop": "", "{urn:schemas-microsoft-com:}Win32FileAttributes": "",
	} {
		if file[name].Value != want {
			t.Errorf("file %s = %q, want %q", name, file[name].Value, want)
		}
	}
	if file["{DAV:}nosuchprop"].Status != "404" || file["{DAV:}getetag"].Status != "200" || file["{DAV:}getcontentlength"].Status != "200" {
		t.Errorf("statuses: %+v", file)
	}
	if !strings.Contains(dir["{DAV:}resourcetype"].Value, "collection") || dir["{DAV:}getcontentlength"].Status != "404" {
		t.Errorf("folder: %+v", dir)
	}
	if !strings.Contains(dir["{DAV:}supportedlock"].Value, "shared") || dir["{DAV:}quota-used-bytes"].Value != "11" {
		t.Errorf("folder: %+v", dir)
	}
	if !strings.HasSuffix(file["{DAV:}getlastmodified"].Value, "GMT") || !strings.HasSuffix(file["{DAV:}creationdate"].Value, "Z") {
		t.Errorf("dates: %+v", file)
	}

	// Depth 0, allprop (also with an empty body), propname.
	for _, body := range []string{"", `<propfind xmlns="DAV:"><allprop/></propfind>`} {
		_, got := s.expect(t, 207, "PROPFIND", "/files/Klasse%205b/plan.txt", body, "Depth", "0")
		p := parseMultistatus(t, got)["/files/Klasse%205b/plan.txt"]
		if p["{DAV:}getetag"].Status != "200" || p["{DAV:}lockdiscovery"].Status != "200" {
			t.Fatalf("allprop: %+v", p)
		}
		if _, ok := p["{DAV:}quota-used-bytes"]; ok {
			t.Fatal("quota in allprop (RFC 4331 says not)")
		}
	}
	_, got := s.expect(t, 207, "PROPFIND", "/files/", `<propfind xmlns="DAV:"><propname/></propfind>`, "Depth", "0")
	p := parseMultistatus(t, got)["/files/"]
	if _, ok := p["{DAV:}resourcetype"]; !ok || p["{DAV:}resourcetype"].Value != "" {
		t.Fatalf("propname: %+v", p)
	}

	// Infinity is refused; so is a missing Depth (it means infinity).
	_, got = s.expect(t, 403, "PROPFIND", "/files/", "", "Depth", "infinity")
	if !strings.Contains(got, "propfind-finite-depth") {
		t.Fatalf("infinity: %s", got)
	}
	s.expect(t, 403, "PROPFIND", "/files/", "")
	s.expect(t, 400, "PROPFIND", "/files/", "", "Depth", "2")
	s.expect(t, 404, "PROPFIND", "/files/none", "", "Depth", "0")
}

func TestPropfindBadXML(t *testing.T) {
	s := newServer(t)
	for name, body := range map[string]string{
		"not well-formed":   "<propfind xmlns='DAV:'>",
		"undeclared prefix": `<D:propfind xmlns:D="DAV:"><D:prop><bar:foo xmlns:bar=""/></D:prop></D:propfind>`,
		"unbound prefix":    `<D:propfind xmlns:D="DAV:"><D:prop><bar:foo/></D:prop></D:propfind>`,
		"doctype":           `<!DOCTYPE x [<!ENTITY a "aaaa">]><propfind xmlns="DAV:"><allprop/></propfind>`,
		"entity":            `<propfind xmlns="DAV:"><prop><x>&a;</x></prop></propfind>`,
		"wrong root":        `<prop xmlns="DAV:"/>`,
		"empty propfind":    `<propfind xmlns="DAV:"/>`,
		"two roots":         `<propfind xmlns="DAV:"><allprop/></propfind><x/>`,
		"too deep":          `<propfind xmlns="DAV:"><prop>` + strings.Repeat("<a>", 70) + strings.Repeat("</a>", 70) + `</prop></propfind>`,
		"latin1":            `<?xml version="1.0" encoding="iso-8859-1"?><propfind xmlns="DAV:"><allprop/></propfind>`,
	} {
		if resp, b := s.do(t, "PROPFIND", "/files/", body, "Depth", "0"); resp.StatusCode != 400 {
			t.Errorf("%s: %d %s", name, resp.StatusCode, b)
		}
	}
	huge := `<propfind xmlns="DAV:"><prop><x>` + strings.Repeat("a", 2<<20) + `</x></prop></propfind>`
	if resp, _ := s.do(t, "PROPFIND", "/files/", huge, "Depth", "0"); resp.StatusCode != 413 {
		t.Errorf("huge body: %d", resp.StatusCode)
	}
	many := `<propfind xmlns="DAV:"><prop>` + strings.Repeat("<x/>", 200_000) + `</prop></propfind>`
	if resp, _ := s.do(t, "PROPFIND", "/files/", many, "Depth", "0"); resp.StatusCode != 400 && resp.StatusCode != 413 {
		t.Errorf("too many elements: %d", resp.StatusCode)
	}
}

func TestProppatch(t *testing.T) {
	s := newServer(t)
	s.expect(t, 201, "PUT", "/files/doc.docx", "x")
	// What Windows Explorer sends after copying a file.
	win := `<?xml version="1.0" encoding="utf-8" ?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>
<Z:Win32CreationTime>Mon, 02 Mar 2026 08:00:00 GMT</Z:Win32CreationTime>
<Z:Win32LastAccessTime>Mon, 02 Mar 2026 08:00:00 GMT</Z:Win32LastAccessTime>
<Z:Win32LastModifiedTime>Mon, 02 Mar 2026 08:00:00 GMT</Z:Win32LastModifiedTime>
<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes>
</D:prop></D:set></D:propertyupdate>`
	_, got := s.expect(t, 207, "PROPPATCH", "/files/doc.docx", win)
	r := parseMultistatus(t, got)["/files/doc.docx"]
	if len(r) != 4 || r["{urn:schemas-microsoft-com:}Win32FileAttributes"].Status != "200" {
		t.Fatalf("proppatch: %s", got)
	}
	_, got = s.expect(t, 207, "PROPFIND", "/files/doc.docx", namedProps, "Depth", "0")
	if v := parseMultistatus(t, got)["/files/doc.docx"]["{urn:schemas-microsoft-com:}Win32FileAttributes"]; v.Value != "00000020" || v.Status != "200" {
		t.Fatalf("Win32FileAttributes: %+v", v)
	}

	// Structured values keep their namespaces; attributes survive.
	s.expect(t, 207, "PROPPATCH", "/files/doc.docx", `<propertyupdate xmlns="DAV:" xmlns:t="urn:t"><set><prop>
<t:tags><t:tag t:lang="de" level="2">Mathe</t:tag><other xmlns="urn:o">&lt;x&gt;</other></t:tags></prop></set></propertyupdate>`)
	_, got = s.expect(t, 207, "PROPFIND", "/files/doc.docx", `<propfind xmlns="DAV:"><prop><tags xmlns="urn:t"/></prop></propfind>`, "Depth", "0")
	v := parseMultistatus(t, got)["/files/doc.docx"]["{urn:t}tags"].Value
	for _, want := range []string{`<tag xmlns="urn:t"`, `level="2"`, `="urn:t"`, `>Mathe</tag>`, `<other xmlns="urn:o">&lt;x&gt;</other>`} {
		if !strings.Contains(v, want) {
			t.Fatalf("value %q lacks %q", v, want)
		}
	}

	// Live properties are protected: 403 for them, 424 for the rest, nothing stored.
	_, got = s.expect(t, 207, "PROPPATCH", "/files/doc.docx", `<propertyupdate xmlns="DAV:"><set><prop>
<getetag>"x"</getetag><z xmlns="urn:z">1</z></prop></set></propertyupdate>`)
	r = parseMultistatus(t, got)["/files/doc.docx"]
	if r["{DAV:}getetag"].Status != "403" || r["{urn:z}z"].Status != "424" || !strings.Contains(got, "cannot-modify-protected-property") {
		t.Fatalf("protected: %s", got)
	}
	_, got = s.expect(t, 207, "PROPFIND", "/files/doc.docx", `<propfind xmlns="DAV:"><prop><z xmlns="urn:z"/></prop></propfind>`, "Depth", "0")
	if parseMultistatus(t, got)["/files/doc.docx"]["{urn:z}z"].Status != "404" {
		t.Fatal("failed PROPPATCH stored something")
	}

	// Remove; dead properties follow COPY and MOVE.
	s.expect(t, 207, "PROPPATCH", "/files/doc.docx", `<propertyupdate xmlns="DAV:"><remove><prop><tags xmlns="urn:t"/></prop></remove></propertyupdate>`)
	s.expect(t, 201, "COPY", "/files/doc.docx", "", "Destination", "/files/copy.docx")
	s.expect(t, 201, "MOVE", "/files/copy.docx", "", "Destination", "/files/moved.docx")
	_, got = s.expect(t, 207, "PROPFIND", "/files/moved.docx", "", "Depth", "0")
	r = parseMultistatus(t, got)["/files/moved.docx"]
	if r["{urn:schemas-microsoft-com:}Win32CreationTime"].Status != "200" {
		t.Fatalf("props after copy+move: %s", got)
	}
	if _, ok := r["{urn:t}tags"]; ok {
		t.Fatal("removed property still there")
	}

	s.expect(t, 404, "PROPPATCH", "/files/none", win)
	s.expect(t, 400, "PROPPATCH", "/files/doc.docx", `<propfind xmlns="DAV:"/>`)
	s.expect(t, 400, "PROPPATCH", "/files/doc.docx", "")
	big := `<propertyupdate xmlns="DAV:"><set><prop><big xmlns="urn:b">` + strings.Repeat("x", 70_000) + `</big></prop></set></propertyupdate>`
	_, got = s.expect(t, 207, "PROPPATCH", "/files/doc.docx", big)
	if parseMultistatus(t, got)["/files/doc.docx"]["{urn:b}big"].Status != "507" {
		t.Fatalf("oversized property: %s", got)
	}
}

func TestScratchFilesHidden(t *testing.T) {
	s := newServer(t)
	for _, n := range []string{"Bericht.pdf", "._Bericht.pdf", ".DS_Store", "Thumbs.db", "desktop.ini", ".hidden-but-normal"} {
		s.expect(t, 201, "PUT", "/files/"+n, "x")
	}
	list := func(ua string) string {
		_, got := s.expect(t, 207, "PROPFIND", "/files/", "", "Depth", "1", "User-Agent", ua)
		var names []string
		for href := range parseMultistatus(t, got) {
			names = append(names, strings.TrimPrefix(href, "/files/"))
		}
		slices.Sort(names)
		return strings.Join(names, " ")
	}
	for ua, want := range map[string]string{
		"WebDAVFS/3.0.0 (03008000) Darwin/22.1.0 (x86_64)": " .DS_Store ._Bericht.pdf .hidden-but-normal Bericht.pdf",
		"Microsoft-WebDAV-MiniRedir/10.0.19045":            " .hidden-but-normal Bericht.pdf Thumbs.db desktop.ini",
		"gvfs/1.50.2":                                      " .hidden-but-normal Bericht.pdf",
		"davfs2/1.7.0 neon/0.32.5":                         " .hidden-but-normal Bericht.pdf",
	} {
		if got := list(ua); got != want {
			t.Errorf("%s sees %q, want %q", ua, got, want)
		}
	}
	// By name they work for everyone; the HTML index hides them too.
	s.expect(t, 200, "GET", "/files/._Bericht.pdf", "", "User-Agent", "gvfs/1.50.2")
	if _, got := s.expect(t, 200, "GET", "/files/", "", "User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"); strings.Contains(got, "DS_Store") {
		t.Fatal("index shows .DS_Store to a Linux browser")
	}
}
