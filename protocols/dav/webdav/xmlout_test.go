package webdav

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// The writers' fast paths copy runs that need no escaping; they must give
// what escaping rune by rune gives.
func TestEscapeWriters(t *testing.T) {
	refText := func(s string) string {
		var b strings.Builder
		for _, r := range s {
			switch r {
			case '&':
				b.WriteString("&amp;")
			case '<':
				b.WriteString("&lt;")
			case '>':
				b.WriteString("&gt;")
			case '\r':
				b.WriteString("&#xD;")
			default:
				b.WriteRune(r)
			}
		}
		return b.String()
	}
	refHref := func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			c := s[i]
			if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~!$'()*,;=:@", c) >= 0 {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
		return b.String()
	}
	cases := []string{"", "plain.txt", "Arbeitsblatt 00001.txt", "a&b<c>d\re", "Über Ärger", "\xff", "a\xffb", "\xe2\x82",
		"€ & ü\r", "\uFFFD", "日本語/100%", "&&&", "x\x00y\tz\n"}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "&", "<", ">", "\r", "\n", "ü", "€", "\xff", "\xe2\x82", " ", "%", "/", "'"}
	for range 2000 {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		cases = append(cases, b.String())
	}
	for _, s := range cases {
		if got, want := string(appendEscapeText([]byte("pre"), s)), "pre"+refText(s); got != want {
			t.Errorf("appendEscapeText(%q) = %q, want %q", s, got, want)
		}
		var buf bytes.Buffer
		buf.WriteString("x")
		escapeText(&buf, s)
		if got, want := buf.String(), "x"+refText(s); got != want {
			t.Errorf("escapeText(%q) = %q, want %q", s, got, want)
		}
		if got, want := hrefEscape(s), refHref(s); got != want {
			t.Errorf("hrefEscape(%q) = %q, want %q", s, got, want)
		}
	}
}

// A multistatus streams: the writer hands pieces of about xwSpill bytes to
// the response as it goes, and flush hands over the rest.
func TestXWSpills(t *testing.T) {
	var out bytes.Buffer
	var writes int
	x := &xw{w: writerFunc(func(p []byte) (int, error) { writes++; return out.Write(p) })}
	want := strings.Repeat("<D:response/>", 10000)
	for range 10000 {
		x.raw("<D:response/>")
	}
	if writes < len(want)/xwSpill || len(x.b) >= xwSpill {
		t.Fatalf("%d writes, %d bytes buffered", writes, len(x.b))
	}
	if err := x.flush(); err != nil || out.String() != want {
		t.Fatalf("flush: %v, %d bytes out", err, out.Len())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
