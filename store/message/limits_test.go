package message

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// TestBoundaries covers delimiter-line edge cases. Bodies are given as
// part path -> BODY[path].
func TestBoundaries(t *testing.T) {
	for _, c := range []struct {
		name, msg, shape string
		bodies           map[string]string
	}{
		{
			name:   "padding after delimiters",
			msg:    crlf("Content-Type: multipart/mixed; boundary=b\n\n--b \t\n\na\n--b--  \nepilogue"),
			shape:  "multipart/mixed(text/plain)",
			bodies: map[string]string{"1": "a", "": crlf("Content-Type: multipart/mixed; boundary=b\n\n--b \t\n\na\n--b--  \nepilogue")},
		},
		{
			name:   "look-alike lines are not delimiters",
			msg:    crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n\n--bx\n-- b\n--b--x\n--b\n\nc\n--b--\n"),
			shape:  "multipart/mixed(text/plain text/plain)",
			bodies: map[string]string{"1": crlf("--bx\n-- b\n--b--x"), "2": "c"},
		},
		{
			name:   "delimiter at EOF without line break",
			msg:    crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b--"),
			shape:  "multipart/mixed(text/plain)",
			bodies: map[string]string{"1": "x"},
		},
		{
			name: "outer boundary is a prefix of the inner one",
			msg: crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: multipart/alternative; boundary=b2\n\n" +
				"--b2\n\ninner1\n--b2\n\ninner2\n--b2--\n--b\n\nouter2\n--b--\n"),
			shape:  "multipart/mixed(multipart/alternative(text/plain text/plain) text/plain)",
			bodies: map[string]string{"1.1": "inner1", "1.2": "inner2", "2": "outer2", "1": crlf("--b2\n\ninner1\n--b2\n\ninner2\n--b2--")},
		},
		{
			name: "inner multipart not closed: ends at the outer delimiter",
			msg: crlf("Content-Type: multipart/mixed; boundary=outer\n\n--outer\nContent-Type: multipart/alternative; boundary=inner\n\n" +
				"--inner\n\ni1\n--inner\n\ni2\n--outer\n\no2\n--outer--\n"),
			shape:  "multipart/mixed(multipart/alternative(text/plain text/plain) text/plain)",
			bodies: map[string]string{"1.2": "i2", "2": "o2", "1": crlf("--inner\n\ni1\n--inner\n\ni2")},
		},
		{
			name:   "empty parts",
			msg:    crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\n\n--b\nContent-Type: text/html\n--b--\n"),
			shape:  "multipart/mixed(text/plain text/plain text/html)",
			bodies: map[string]string{"1": "", "2": "", "3": ""},
		},
		{
			name:   "no preamble, CRLF-only body lines kept",
			msg:    crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n\n\n\n--b--\n"),
			shape:  "multipart/mixed(text/plain)",
			bodies: map[string]string{"1": "\r\n"},
		},
		{
			name:   "boundary never found",
			msg:    crlf("Content-Type: multipart/mixed; boundary=b\n\nno parts here\n"),
			shape:  "text/plain",
			bodies: map[string]string{"1": crlf("no parts here\n")},
		},
		{
			name:   "close delimiter before any part",
			msg:    crlf("Content-Type: multipart/mixed; boundary=b\n\n--b--\n"),
			shape:  "text/plain",
			bodies: map[string]string{"1": crlf("--b--\n")},
		},
		{
			name:   "quoted boundary with specials",
			msg:    crlf("Content-Type: multipart/mixed; boundary=\"=_a b:c?d\"\n\n--=_a b:c?d\n\nx\n--=_a b:c?d--\n"),
			shape:  "multipart/mixed(text/plain)",
			bodies: map[string]string{"1": "x"},
		},
		{
			name:   "message/rfc822 with base64 encoding is a leaf",
			msg:    crlf("Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogeAoKeQo=\n"),
			shape:  "message/rfc822",
			bodies: map[string]string{"1": crlf("U3ViamVjdDogeAoKeQo=\n")},
		},
		{
			name:   "mixed line endings",
			msg:    "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\n\r\nx\r\n--b\r\n\ny\n--b--\n",
			shape:  "multipart/mixed(text/plain text/plain)",
			bodies: map[string]string{"1": "x", "2": "y"},
		},
		{
			name:   "only a header",
			msg:    "Subject: x\r\n",
			shape:  "text/plain",
			bodies: map[string]string{"1": ""},
		},
		{
			name:   "empty message",
			msg:    "",
			shape:  "text/plain",
			bodies: map[string]string{"1": "", "": ""},
		},
		{
			name:   "no header",
			msg:    "\r\nbody only\r\n",
			shape:  "text/plain",
			bodies: map[string]string{"1": "body only\r\n"},
		},
		{
			name:   "header with continuation first and NUL bytes",
			msg:    " cont\r\nSub\x00ject: x\r\nContent-Type: text/html\r\n\r\nb",
			shape:  "text/html",
			bodies: map[string]string{"1": "b"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg := []byte(c.msg)
			s := mustParse(t, msg)
			if got := shape(s.Root); got != c.shape {
				t.Errorf("shape %s, want %s", got, c.shape)
			}
			for path, want := range c.bodies {
				if got, ok := section(t, msg, s, path, ""); !ok || got != want {
					t.Errorf("BODY[%s] = %q, %v; want %q", path, got, ok, want)
				}
			}
		})
	}
}

// TestChunkedLines checks offsets around lines longer than the read
// buffer, including a CRLF split between two buffer fills.
func TestChunkedLines(t *testing.T) {
	for n := readBufSize - 70; n < readBufSize+10; n++ {
		long := strings.Repeat("x", n)
		msg := []byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n" + long + "\r\n" + long + "\r\n--b\r\n\r\nz\r\n--b--\r\n")
		s := mustParse(t, msg)
		p1, p2 := mustPart(t, s, "1"), mustPart(t, s, "2")
		if got := string(msg[p1.BodyStart:p1.End]); got != long+"\r\n"+long || p1.Lines != 1 {
			t.Fatalf("n=%d: part 1 has %d bytes, %d lines", n, len(got), p1.Lines)
		}
		if got := string(msg[p2.BodyStart:p2.End]); got != "z" {
			t.Fatalf("n=%d: part 2 = %q", n, got)
		}
	}
	// A header line longer than the buffer.
	msg := []byte("Subject: " + strings.Repeat("s", 2*readBufSize-10) + "\r\nTo: a@b.test\r\n\r\nbody")
	s := mustParse(t, msg)
	if len(s.Envelope.Subject) != 2*readBufSize-10 || len(s.Envelope.To) != 1 || string(msg[s.HeaderSize:]) != "body" {
		t.Errorf("long header line: subject %d bytes, To %v", len(s.Envelope.Subject), s.Envelope.To)
	}
}

func TestMaxDepth(t *testing.T) {
	const levels = MaxDepth + 10
	var b strings.Builder
	for i := range levels {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("\r\ndeepest\r\n")
	for i := levels - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	msg := []byte(b.String())
	s := mustParse(t, msg)
	depth := 0
	p := s.Root
	for p.IsMultipart() {
		if len(p.Children) != 1 {
			t.Fatalf("level %d has %d children", depth, len(p.Children))
		}
		p = p.Children[0]
		depth++
	}
	if depth != MaxDepth || p.Type != "text" || p.Params["boundary"] != fmt.Sprint("b", MaxDepth) {
		t.Fatalf("opaque part at depth %d: %s %v", depth, p.MediaType(), p.Params)
	}
	if body := string(msg[p.BodyStart:p.End]); !strings.Contains(body, "deepest") || !strings.HasPrefix(body, fmt.Sprintf("--b%d\r\n", MaxDepth)) {
		t.Errorf("opaque body %q", body)
	}

	// Nested message/rfc822 parts.
	b.Reset()
	for range levels {
		b.WriteString("Content-Type: message/rfc822\r\n\r\n")
	}
	b.WriteString("\r\nbody\r\n")
	msg = []byte(b.String())
	s = mustParse(t, msg)
	depth = 0
	for p = s.Root; p.IsMessage(); p = p.Children[0] {
		depth++
	}
	if depth != MaxDepth || p.MediaType() != "message/rfc822" || p.Envelope != nil {
		t.Errorf("embedded messages: depth %d, leaf %s", depth, p.MediaType())
	}
}

func TestMaxParts(t *testing.T) {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=b\r\n\r\n")
	for i := range MaxParts + 50 {
		fmt.Fprintf(&b, "--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n\r\n%d\r\n--c--\r\n", i)
	}
	b.WriteString("--b--\r\n")
	msg := []byte(b.String())
	s := mustParse(t, msg)
	n := 0
	s.Walk(func([]int, *Part) bool { n++; return true })
	if n != MaxParts {
		t.Errorf("%d parts, want %d", n, MaxParts)
	}
	last := s.Root.Children[len(s.Root.Children)-1]
	if s.Root.End != int64(len(msg)) || last.End > s.Root.End {
		t.Errorf("bad offsets after the limit")
	}
	if _, err := Unmarshal(s.Marshal()); err != nil {
		t.Errorf("Unmarshal: %v", err)
	}
}

func TestMaxHeaderSize(t *testing.T) {
	var b strings.Builder
	b.WriteString("Subject: big header\r\n")
	for b.Len() < MaxHeaderSize+100000 {
		b.WriteString("X-Filler: " + strings.Repeat("f", 100) + "\r\n")
	}
	b.WriteString("To: late@example.com\r\n\r\nbody\r\n")
	msg := []byte(b.String())
	s := mustParse(t, msg)
	if s.HeaderSize > MaxHeaderSize || s.HeaderSize < MaxHeaderSize-200 {
		t.Errorf("HeaderSize = %d", s.HeaderSize)
	}
	if s.Envelope.Subject != "big header" || s.Envelope.To != nil {
		t.Errorf("envelope %+v", s.Envelope)
	}
	if !strings.HasPrefix(string(msg[s.HeaderSize:]), "X-Filler: ") {
		t.Errorf("the body does not start at a line")
	}
}

// genReader produces a message with a huge base64 attachment without
// holding it in memory.
type genReader struct {
	parts [][]byte
	line  []byte
	lines int
	buf   []byte
}

func newGenReader(size int) *genReader {
	line := []byte(strings.Repeat("QUJDRA", 13)[:76] + "\r\n")
	return &genReader{
		parts: [][]byte{
			[]byte("From: a@example.com\r\nSubject: big\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n\r\nsee attachment\r\n" +
				"--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"),
			nil, // the attachment lines
			[]byte("--XX--\r\n"),
		},
		line:  line,
		lines: size / len(line),
	}
}

func (g *genReader) Read(p []byte) (int, error) {
	for len(g.buf) == 0 {
		switch {
		case len(g.parts) == 0:
			return 0, io.EOF
		case g.parts[0] == nil && g.lines > 0:
			g.buf = g.line
			g.lines--
		case g.parts[0] == nil:
			g.parts = g.parts[1:]
		default:
			g.buf = g.parts[0]
			g.parts = g.parts[1:]
		}
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

func TestBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MiB")
	}
	const size = 50 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s, err := Parse(newGenReader(size))
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("parsing a 50 MiB message allocated %d bytes", alloc)
	}
	att := mustPart(t, s, "2")
	if att.Size() < size-100 || att.Lines != int64(size/78)-1 || s.Size < size {
		t.Errorf("attachment size %d, lines %d", att.Size(), att.Lines)
	}
}

type errReader struct {
	r   io.Reader
	err error
}

func (r *errReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err == io.EOF {
		err = r.err
	}
	return n, err
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	msg := readTestdata(t, "nested-rfc822.eml")
	for _, n := range []int{0, 10, 300, 500, len(msg)} {
		s, err := Parse(&errReader{bytes.NewReader(msg[:n]), boom})
		if err != boom || s != nil {
			t.Errorf("cut at %d: %v, %v", n, s, err)
		}
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, tt := range structureTests {
		msg := readTestdata(t, tt.file)
		s := mustParse(t, msg)
		b := s.Marshal()
		s2, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		if !reflect.DeepEqual(s, s2) {
			t.Errorf("%s: round trip differs", tt.file)
		}
		env, size, err := UnmarshalEnvelope(b)
		if err != nil || size != s.Size || !reflect.DeepEqual(env, s.Envelope) {
			t.Errorf("%s: UnmarshalEnvelope differs: %v", tt.file, err)
		}
		t.Logf("%s: %d bytes -> %d bytes encoded", tt.file, len(msg), len(b))

		// Every strict prefix is rejected, and corruption never panics.
		for i := range b {
			if _, err := Unmarshal(b[:i]); err == nil {
				t.Errorf("%s: prefix of %d bytes accepted", tt.file, i)
			}
			c := bytes.Clone(b)
			for _, x := range []byte{0x01, 0x80, 0xff} {
				c[i] = b[i] ^ x
				Unmarshal(c)
				UnmarshalEnvelope(c)
			}
		}
		if _, err := Unmarshal(append(bytes.Clone(b), 0)); err == nil {
			t.Errorf("%s: trailing byte accepted", tt.file)
		}
		bad := bytes.Clone(b)
		bad[0] = version + 1
		if _, err := Unmarshal(bad); err != ErrVersion {
			t.Errorf("%s: wrong version: %v", tt.file, err)
		}
	}
	if _, err := Unmarshal(nil); err == nil {
		t.Errorf("empty input accepted")
	}
}
