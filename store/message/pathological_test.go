package message

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestPathological makes sure adversarial headers and bodies are parsed in
// roughly linear time.
func TestPathological(t *testing.T) {
	const n = MaxHeaderSize - 1000
	rep := func(s string) string { return strings.Repeat(s, n/len(s)) }
	for _, c := range []struct{ name, msg string }{
		{"unterminated encoded words", "Subject: " + rep("=?a?q?") + "\r\n\r\n"},
		{"bad encoded words, one end", "Subject: " + rep("=?x?b?!") + "?=\r\n\r\n"},
		{"many encoded words", "Subject: " + rep("=?utf-8?q?a?= =?iso-8859-1?q?b?= ") + "\r\n\r\n"},
		{"angle brackets", "Message-ID: " + rep("<") + "\r\nIn-Reply-To: " + rep("<a>") + "\r\n\r\n"},
		{"address junk", "To: " + rep("<@a,") + "\r\nCc: " + rep("a:b;") + "\r\nBcc: " + rep("\"") + "\r\nFrom: " + rep("(") + "\r\n\r\n"},
		{"addresses", "To: " + rep("a@b, ") + "\r\n\r\n"},
		{"domain literal", "To: a@" + rep("[") + "\r\n\r\n"},
		{"params", "Content-Type: text/plain" + rep("; a*1*=%41") + "\r\n\r\n"},
		{"param segments", "Content-Type: text/plain" + rep("; a*0=x") + "\r\n\r\n"},
		{"quoted params", "Content-Type: text/plain; a=\"" + rep("\\\"") + "\r\n\r\n"},
		{"dates", "Date: " + rep("1 ") + "\r\n\r\n"},
		{"folded lines", "Subject: x" + rep("\r\n ") + "\r\n\r\n"},
		{"fields", rep("A: b\r\n") + "\r\n"},
		{"long boundary", "Content-Type: multipart/mixed; boundary=" + rep("b") + "\r\n\r\n" + strings.Repeat("--"+rep("b")[:30000]+"\r\n", 100)},
		{"many nested boundaries", strings.Repeat("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n", 50) + strings.Repeat("--b\r\n", 200000)},
	} {
		start := time.Now()
		s, err := Parse(strings.NewReader(c.msg))
		if err != nil {
			t.Fatal(err)
		}
		s.Marshal()
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: took %v", c.name, d)
		}
		checkInvariants(t, s, int64(len(c.msg)))
	}
	// The same headers through the public decoder.
	start := time.Now()
	DecodeHeaderText(rep("=?a?q?"))
	DecodeHeaderText(rep("=?x?b?!") + "?=")
	HeaderValues([]byte("A: "+rep("=?x?b?!")+"?=\r\n"), "a")
	if d := time.Since(start); d > time.Second {
		t.Errorf("DecodeHeaderText took %v", d)
	}
	_ = bytes.MinRead
}
