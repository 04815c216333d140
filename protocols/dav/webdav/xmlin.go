package webdav

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Request bodies (PROPFIND, PROPPATCH, LOCK) are parsed into a small
// element tree with our own namespace processing on top of encoding/xml's
// RawToken, within limits: the body size (maxXMLBody, enforced by the
// caller), nesting depth and token count. Document type declarations are
// refused, so there are no entities beyond XML's five and character
// references (encoding/xml's strict mode refuses anything else), and
// undeclaring a prefix (xmlns:p="") or using an unbound one is an error, as
// the Namespaces in XML recommendation says.

const (
	maxXMLBody   = 1 << 20
	maxXMLDepth  = 64
	maxXMLTokens = 100_000
)

const nsDAV = "DAV:"

const nsXML = "http://www.w3.org/XML/1998/namespace"

// xelem is an element with resolved names. Content holds *xelem and string
// (character data) in document order.
type xelem struct {
	Name    xml.Name
	Attrs   []xml.Attr // resolved, without namespace declarations
	Content []any
}

var errXML = errors.New("malformed XML request body")

func xmlError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errXML, fmt.Sprintf(format, args...))
}

// parseXML reads one XML document.
func parseXML(r io.Reader) (*xelem, error) {
	d := xml.NewDecoder(r)
	d.Strict = true
	type frame struct {
		e      *xelem
		raw    xml.Name
		scope  map[string]string
		parent *frame
	}
	var top *frame
	var root *xelem
	depth, tokens := 0, 0
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			if root == nil || top != nil {
				return nil, xmlError("unexpected end")
			}
			return root, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errXML, err)
		}
		if tokens++; tokens > maxXMLTokens {
			return nil, xmlError("too many tokens")
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if top == nil && root != nil {
				return nil, xmlError("more than one root element")
			}
			if depth++; depth > maxXMLDepth {
				return nil, xmlError("nested too deeply")
			}
			f := &frame{raw: t.Name, scope: map[string]string{}, parent: top}
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "xmlns":
					if a.Value == "" {
						return nil, xmlError("prefix %q undeclared with an empty namespace", a.Name.Local)
					}
					f.scope[a.Name.Local] = a.Value
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					f.scope[""] = a.Value
				}
			}
			lookup := func(prefix string) (string, bool) {
				if prefix == "xml" {
					return nsXML, true
				}
				for g := f; g != nil; g = g.parent {
					if ns, ok := g.scope[prefix]; ok {
						return ns, true
					}
				}
				return "", prefix == ""
			}
			ns, ok := lookup(t.Name.Space)
			if !ok {
				return nil, xmlError("unbound prefix %q", t.Name.Space)
			}
			f.e = &xelem{Name: xml.Name{Space: ns, Local: t.Name.Local}}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
					continue
				}
				ans := ""
				if a.Name.Space != "" {
					if ans, ok = lookup(a.Name.Space); !ok {
						return nil, xmlError("unbound prefix %q", a.Name.Space)
					}
				}
				f.e.Attrs = append(f.e.Attrs, xml.Attr{Name: xml.Name{Space: ans, Local: a.Name.Local}, Value: a.Value})
			}
			if top != nil {
				top.e.Content = append(top.e.Content, f.e)
			} else {
				root = f.e
			}
			top = f
		case xml.EndElement:
			if top == nil || t.Name != top.raw {
				return nil, xmlError("mismatched end tag")
			}
			depth--
			top = top.parent
		case xml.CharData:
			if top != nil {
				top.e.Content = append(top.e.Content, string(t))
			} else if len(bytes.TrimSpace(t)) > 0 {
				return nil, xmlError("text outside the root element")
			}
		case xml.Directive:
			return nil, xmlError("document type declarations are not accepted")
		case xml.ProcInst:
			if t.Target == "xml" && (root != nil || tokens > 1) {
				return nil, xmlError("misplaced XML declaration")
			}
		case xml.Comment:
		}
	}
}

// is reports whether e is the DAV: element local.
func (e *xelem) is(local string) bool { return e.Name.Space == nsDAV && e.Name.Local == local }

// elems returns the child elements of e.
func (e *xelem) elems() []*xelem {
	var out []*xelem
	for _, c := range e.Content {
		if ce, ok := c.(*xelem); ok {
			out = append(out, ce)
		}
	}
	return out
}

// child returns the first DAV: child element named local, or nil.
func (e *xelem) child(local string) *xelem {
	for _, c := range e.elems() {
		if c.is(local) {
			return c
		}
	}
	return nil
}

// fragment serializes the content of e as a self-contained XML fragment:
// every element declares its own default namespace, and attributes in a
// namespace get a prefix declared on their element. A stored property value
// or lock owner can then be written anywhere in a response unchanged.
func (e *xelem) fragment() []byte {
	var b bytes.Buffer
	writeContent(&b, e.Content)
	return b.Bytes()
}

func writeContent(b *bytes.Buffer, content []any) {
	for _, c := range content {
		switch c := c.(type) {
		case string:
			escapeText(b, c)
		case *xelem:
			b.WriteByte('<')
			b.WriteString(c.Name.Local)
			b.WriteString(` xmlns="`)
			escapeAttr(b, c.Name.Space)
			b.WriteByte('"')
			for i, a := range c.Attrs {
				b.WriteByte(' ')
				switch a.Name.Space {
				case "":
				case nsXML:
					b.WriteString("xml:")
				default:
					fmt.Fprintf(b, `a%d:`, i)
				}
				b.WriteString(a.Name.Local)
				b.WriteString(`="`)
				escapeAttr(b, a.Value)
				b.WriteByte('"')
				if a.Name.Space != "" && a.Name.Space != nsXML {
					fmt.Fprintf(b, ` xmlns:a%d="`, i)
					escapeAttr(b, a.Name.Space)
					b.WriteByte('"')
				}
			}
			if len(c.Content) == 0 {
				b.WriteString("/>")
				continue
			}
			b.WriteByte('>')
			writeContent(b, c.Content)
			b.WriteString("</")
			b.WriteString(c.Name.Local)
			b.WriteByte('>')
		}
	}
}

func escapeText(b *bytes.Buffer, s string) {
	b.Write(appendEscapeText(b.AvailableBuffer(), s))
}

// appendEscapeText appends s to b as XML character data: markup characters
// and CR escaped, bytes that are not UTF-8 replaced by U+FFFD. Runs that
// need nothing (most names, dates and types) are copied whole.
func appendEscapeText(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(append(b, s[start:i]...), utf8.RuneError)
				start = i + 1
			}
			i += size
			continue
		}
		var esc string
		switch c {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\r':
			esc = "&#xD;"
		}
		if esc != "" {
			b = append(append(b, s[start:i]...), esc...)
			start = i + 1
		}
		i++
	}
	return append(b, s[start:]...)
}

func escapeAttr(b *bytes.Buffer, s string) {
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString("&quot;")
		case '\n':
			b.WriteString("&#xA;")
		case '\t':
			b.WriteString("&#x9;")
		default:
			escapeText(b, string(r))
		}
	}
}
