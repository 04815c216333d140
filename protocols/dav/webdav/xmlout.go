package webdav

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"strings"
)

// Responses are written by hand: the DAV: namespace has the prefix D
// everywhere, no default namespace is declared, and every other property
// declares its namespace on its own element. Multistatus bodies stream: a
// folder listing never builds the whole document in memory.

const xmlHeader = `<?xml version="1.0" encoding="utf-8"?>` + "\n"

// xw writes XML to a buffered writer.
type xw struct {
	w   *bufio.Writer
	buf bytes.Buffer
}

func newXW(w http.ResponseWriter, status int) *xw {
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(status)
	x := &xw{w: bufio.NewWriterSize(w, 32<<10)}
	x.raw(xmlHeader)
	return x
}

func (x *xw) raw(s string) { x.w.WriteString(s) }

func (x *xw) text(s string) {
	x.buf.Reset()
	escapeText(&x.buf, s)
	x.w.Write(x.buf.Bytes())
}

// elem writes <D:local>text</D:local>.
func (x *xw) elem(local, text string) {
	x.raw("<D:" + local + ">")
	x.text(text)
	x.raw("</D:" + local + ">")
}

func (x *xw) flush() error { return x.w.Flush() }

// propTag returns the start and end tags of a property element.
func propTag(space, local string) (start, end string) {
	switch space {
	case nsDAV:
		return "<D:" + local, "</D:" + local + ">"
	case "":
		return "<" + local + ` xmlns=""`, "</" + local + ">"
	}
	var b bytes.Buffer
	escapeAttr(&b, space)
	return "<X:" + local + ` xmlns:X="` + b.String() + `"`, "</X:" + local + ">"
}

// prop writes a property with an XML fragment (or nothing) as its value.
func (x *xw) prop(space, local string, value []byte) {
	start, end := propTag(space, local)
	x.raw(start)
	if len(value) == 0 {
		x.raw("/>")
		return
	}
	x.raw(">")
	x.w.Write(value)
	x.raw(end)
}

func statusLine(code int) string {
	return fmt.Sprintf("HTTP/1.1 %d %s", code, http.StatusText(code))
}

// errorBody writes a DAV:error body naming a precondition (RFC 4918 section 16).
func errorBody(w http.ResponseWriter, status int, condition string) {
	x := newXW(w, status)
	x.raw(`<D:error xmlns:D="DAV:"><D:` + condition + `/></D:error>`)
	x.flush()
}

// hrefEscape percent-encodes one path segment for an href.
func hrefEscape(seg string) string {
	var b strings.Builder
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~!$'()*,;=:@", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
