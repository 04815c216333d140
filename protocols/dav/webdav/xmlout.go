package webdav

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Responses are written by hand: the DAV: namespace has the prefix D
// everywhere, no default namespace is declared, and every other property
// declares its namespace on its own element. Multistatus bodies stream: a
// folder listing never builds the whole document in memory.

const xmlHeader = `<?xml version="1.0" encoding="utf-8"?>` + "\n"

// xw appends XML to a buffer and hands the buffer to w each time it holds
// xwSpill bytes, so a multistatus of any length streams in pieces of that
// size. With w nil it only collects (a fragment written later).
type xw struct {
	w   io.Writer
	b   []byte
	err error // the first error of w; later writes are dropped
}

const xwSpill = 32 << 10

func newXW(w http.ResponseWriter, status int) *xw {
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(status)
	x := &xw{w: w, b: make([]byte, 0, xwSpill+4<<10)}
	x.raw(xmlHeader)
	return x
}

// spill hands a full buffer to w.
func (x *xw) spill() {
	if len(x.b) >= xwSpill && x.w != nil {
		x.write()
	}
}

func (x *xw) write() {
	if x.err == nil && len(x.b) > 0 {
		_, x.err = x.w.Write(x.b)
	}
	x.b = x.b[:0]
}

func (x *xw) raw(s string) {
	x.b = append(x.b, s...)
	x.spill()
}

// bytes writes p as it is (an XML fragment).
func (x *xw) bytes(p []byte) {
	x.b = append(x.b, p...)
	x.spill()
}

// elem writes <D:local>text</D:local>.
func (x *xw) elem(local, text string) {
	x.b = append(append(append(x.b, "<D:"...), local...), '>')
	x.b = appendEscapeText(x.b, text)
	x.b = append(append(append(x.b, "</D:"...), local...), '>')
	x.spill()
}

// flush writes what is buffered and returns the first error of w.
func (x *xw) flush() error {
	if x.w != nil {
		x.write()
	}
	return x.err
}

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
	x.bytes(value)
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
	return string(appendHrefEscape(nil, seg))
}

// hrefSafe marks the bytes a path segment keeps as they are in an href.
var hrefSafe = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~!$'()*,;=:@", byte(c)) >= 0
	}
	return t
}()

// appendHrefEscape appends seg to b, percent-encoded as hrefEscape does.
func appendHrefEscape(b []byte, seg string) []byte {
	const hex = "0123456789ABCDEF"
	start := 0
	for i := 0; i < len(seg); i++ {
		if c := seg[i]; !hrefSafe[c] {
			b = append(b, seg[start:i]...)
			b = append(b, '%', hex[c>>4], hex[c&15])
			start = i + 1
		}
	}
	return append(b, seg[start:]...)
}
