package caldav

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// XML namespaces of DAV, CalDAV, CardDAV and the Apple/CalendarServer
// extensions clients use.
const (
	nsDAV   = "DAV:"
	nsCal   = "urn:ietf:params:xml:ns:caldav"
	nsCard  = "urn:ietf:params:xml:ns:carddav"
	nsCS    = "http://calendarserver.org/ns/"
	nsApple = "http://apple.com/ns/ical/"
)

// Limits on request bodies in XML.
const (
	maxXMLBody  = 1 << 20
	maxXMLDepth = 50
)

// prefixes are declared once on every multistatus and error element.
var prefixes = []struct{ prefix, ns string }{
	{"d", nsDAV}, {"cal", nsCal}, {"card", nsCard}, {"cs", nsCS}, {"ical", nsApple},
}

func prefixOf(ns string) string {
	for _, p := range prefixes {
		if p.ns == ns {
			return p.prefix
		}
	}
	return ""
}

func rootDecls() string {
	var b strings.Builder
	for _, p := range prefixes {
		b.WriteString(` xmlns:` + p.prefix + `="` + p.ns + `"`)
	}
	return b.String()
}

// node is an element of a parsed request body. Bodies are small (at most
// maxXMLBody) and handlers look at them in many ways (PROPPATCH keeps
// unknown properties verbatim), so a tree is simpler than struct decoding.
type node struct {
	name     xml.Name
	attrs    []xml.Attr
	children []*node
	text     string
	content  []any // text (string) and children (*node) in document order
}

func (n *node) is(ns, local string) bool {
	return n != nil && n.name.Space == ns && n.name.Local == local
}

// child returns the first child element with that name, or nil.
func (n *node) child(ns, local string) *node {
	if n == nil {
		return nil
	}
	for _, c := range n.children {
		if c.is(ns, local) {
			return c
		}
	}
	return nil
}

func (n *node) all(ns, local string) []*node {
	var out []*node
	if n == nil {
		return nil
	}
	for _, c := range n.children {
		if c.is(ns, local) {
			out = append(out, c)
		}
	}
	return out
}

func (n *node) attr(local string) (string, bool) {
	for _, a := range n.attrs {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}

var (
	errXMLDoctype = errors.New("XML with DOCTYPE or entity declarations is refused")
	errXMLDepth   = errors.New("XML nested too deeply")
	errXMLLarge   = errors.New("XML request body too large")
)

// readXML reads and parses a request body. An empty body gives nil, nil.
// DOCTYPE (and so entity declarations) and nesting deeper than maxXMLDepth
// are refused: no entity expansion, no stack exhaustion.
func readXML(r *http.Request) (*node, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxXMLBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxXMLBody {
		return nil, errXMLLarge
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	return parseXML(body)
}

func parseXML(body []byte) (*node, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	var stack []*node
	var root *node
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, errXMLDoctype
		case xml.StartElement:
			if len(stack) >= maxXMLDepth {
				return nil, errXMLDepth
			}
			n := &node{name: t.Name}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue
				}
				n.attrs = append(n.attrs, a)
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
				p.content = append(p.content, n)
			} else if root != nil {
				return nil, errors.New("more than one root element")
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.text += string(t)
				p.content = append(p.content, string(t))
			}
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	return root, nil
}

// fragment serialises a node's content (its children and text) so that it
// can be stored and later written back inside an element of the same name:
// every element carries its own namespace declaration, so the fragment does
// not depend on prefixes declared elsewhere.
func (n *node) fragment() string {
	var b strings.Builder
	n.writeContent(&b)
	return b.String()
}

func (n *node) writeContent(b *strings.Builder) {
	for _, c := range n.content {
		switch c := c.(type) {
		case string:
			xml.EscapeText(b, []byte(c))
		case *node:
			c.write(b)
		}
	}
}

func (n *node) write(b *strings.Builder) {
	b.WriteString("<" + n.name.Local + ` xmlns="`)
	xml.EscapeText(b, []byte(n.name.Space))
	b.WriteString(`"`)
	for i, a := range n.attrs {
		name := a.Name.Local
		if a.Name.Space != "" {
			p := "a" + strconv.Itoa(i)
			b.WriteString(" xmlns:" + p + `="`)
			xml.EscapeText(b, []byte(a.Name.Space))
			b.WriteString(`"`)
			name = p + ":" + name
		}
		b.WriteString(" " + name + `="`)
		xml.EscapeText(b, []byte(a.Value))
		b.WriteString(`"`)
	}
	b.WriteString(">")
	n.writeContent(b)
	b.WriteString("</" + n.name.Local + ">")
}

// propKey names a property in the store's dead property map: "{ns}local".
func propKey(n xml.Name) string { return "{" + n.Space + "}" + n.Local }

func parsePropKey(s string) (xml.Name, bool) {
	if !strings.HasPrefix(s, "{") {
		return xml.Name{}, false
	}
	i := strings.IndexByte(s, '}')
	if i < 0 || i == len(s)-1 {
		return xml.Name{}, false
	}
	return xml.Name{Space: s[1:i], Local: s[i+1:]}, true
}

// validLocal reports whether s can be written as an element's local name.
func validLocal(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r > 0x7f ||
			i > 0 && (r == '-' || r == '.' || r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// esc escapes text for XML content or attribute values.
func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// openTag and closeTag write an element name with the fixed prefixes, or a
// local namespace declaration for namespaces outside the fixed set.
func openTag(n xml.Name, empty bool) string {
	end := ">"
	if empty {
		end = "/>"
	}
	if p := prefixOf(n.Space); p != "" {
		return "<" + p + ":" + n.Local + end
	}
	if n.Space == "" {
		return "<" + n.Local + ` xmlns=""` + end
	}
	return "<x:" + n.Local + ` xmlns:x="` + esc(n.Space) + `"` + end
}

func closeTag(n xml.Name) string {
	if p := prefixOf(n.Space); p != "" {
		return "</" + p + ":" + n.Local + ">"
	}
	if n.Space == "" {
		return "</" + n.Local + ">"
	}
	return "</x:" + n.Local + ">"
}

func element(n xml.Name, inner string) string {
	if inner == "" {
		return openTag(n, true)
	}
	return openTag(n, false) + inner + closeTag(n)
}

// prop is one property of a response: its name, status and content (XML,
// already escaped).
type prop struct {
	name   xml.Name
	status int
	inner  string
}

// msWriter streams a multistatus body (RFC 4918, section 13), one response
// at a time, so a REPORT over thousands of objects does not build the whole
// document in memory.
type msWriter struct {
	w       *bufio.Writer
	started bool
	rw      http.ResponseWriter
}

func newMSWriter(rw http.ResponseWriter) *msWriter {
	return &msWriter{rw: rw}
}

func (m *msWriter) start() {
	if m.started {
		return
	}
	m.started = true
	m.rw.Header().Set("Content-Type", `application/xml; charset="utf-8"`)
	m.rw.WriteHeader(http.StatusMultiStatus)
	m.w = bufio.NewWriterSize(m.rw, 32<<10)
	m.w.WriteString(xml.Header + "<d:multistatus" + rootDecls() + ">\n")
}

func statusLine(code int) string {
	return "HTTP/1.1 " + strconv.Itoa(code) + " " + http.StatusText(code)
}

// response writes one resource's properties grouped by status.
func (m *msWriter) response(href string, props []prop) {
	m.start()
	m.w.WriteString("<d:response><d:href>" + esc(href) + "</d:href>")
	if len(props) == 0 {
		m.w.WriteString("<d:propstat><d:prop/><d:status>" + statusLine(http.StatusOK) + "</d:status></d:propstat></d:response>\n")
		return
	}
	var order []int
	groups := make(map[int][]prop)
	for _, p := range props {
		if _, ok := groups[p.status]; !ok {
			order = append(order, p.status)
		}
		groups[p.status] = append(groups[p.status], p)
	}
	for _, code := range order {
		m.w.WriteString("<d:propstat><d:prop>")
		for _, p := range groups[code] {
			m.w.WriteString(element(p.name, p.inner))
		}
		m.w.WriteString("</d:prop><d:status>" + statusLine(code) + "</d:status></d:propstat>")
	}
	m.w.WriteString("</d:response>\n")
}

// status writes a response with only a status (a deleted or missing member)
// and optionally an error element's content.
func (m *msWriter) status(href string, code int, errInner string) {
	m.start()
	m.w.WriteString("<d:response><d:href>" + esc(href) + "</d:href><d:status>" + statusLine(code) + "</d:status>")
	if errInner != "" {
		m.w.WriteString("<d:error>" + errInner + "</d:error>")
	}
	m.w.WriteString("</d:response>\n")
}

func (m *msWriter) end(syncToken string) error {
	m.start()
	if syncToken != "" {
		m.w.WriteString("<d:sync-token>" + esc(syncToken) + "</d:sync-token>\n")
	}
	m.w.WriteString("</d:multistatus>\n")
	return m.w.Flush()
}
