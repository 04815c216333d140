package imap

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.b))
	copy(p, c.b[:k])
	c.b = c.b[k:]
	return k, nil
}

// FuzzContainsFold: SEARCH BODY/TEXT's streaming, case-insensitive match
// finds exactly what a search of the whole lower-cased text finds, however
// the text is split into reads (UTF-8 sequences cut between reads included).
func FuzzContainsFold(f *testing.F) {
	f.Add([]byte("Hello World"), "world", uint16(3))
	f.Add([]byte("Grüße aus Köln"), "KÖLN", uint16(1))
	f.Add([]byte("\xe2\x82"), "\xe2\x82\xac", uint16(1))
	f.Add(bytes.Repeat([]byte("ab"), 1000), "bab", uint16(700))
	f.Add([]byte("ſ and K (Kelvin)"), "s and k", uint16(4))
	f.Add([]byte("İstanbul"), "i̇s", uint16(2))
	f.Fuzz(func(t *testing.T, text []byte, needle string, chunk uint16) {
		// Bounded so each run is quick: the carried tail is len(needle)
		// bytes per read (real reads are 32 KiB).
		if chunk == 0 || len(needle) > 512 || len(text) > 64<<10 {
			t.Skip()
		}
		if int(chunk) < len(text)/4096 {
			chunk = uint16(len(text) / 4096)
		}
		n := bytes.ToLower([]byte(needle))
		want := len(n) == 0 || bytes.Contains(bytes.ToLower(text), n)
		got, err := containsFold(&chunkReader{b: text, n: int(chunk)}, n)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("containsFold(%q, %q, chunks of %d) = %v, want %v", text, n, chunk, got, want)
		}
	})
}

// FuzzPartial: BODY[]<offset.size> never reaches outside the section.
func FuzzPartial(f *testing.F) {
	f.Add(int64(100), int64(10), int64(20))
	f.Add(int64(0), int64(-1), int64(-1))
	f.Add(int64(5), int64(1<<62), int64(1<<62))
	f.Fuzz(func(t *testing.T, total, off, size int64) {
		if total < 0 {
			total = -total
			if total < 0 {
				total = 0
			}
		}
		o, s := partial(total, &imap.SectionPartial{Offset: off, Size: size})
		if o < 0 || s < 0 || o > total || o+s > total {
			t.Fatalf("partial(%d, %d.%d) = %d, %d", total, off, size, o, s)
		}
	})
}

// fakeConn serves reads from a chunkReader and discards writes.
type fakeConn struct {
	net.Conn // nil: other methods are not used
	r        *chunkReader
	written  int
}

func (c *fakeConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *fakeConn) Write(p []byte) (int, error)      { c.written += len(p); return len(p), nil }
func (c *fakeConn) Close() error                     { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }
func (c *fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fakeConn) SetDeadline(t time.Time) error    { return nil }

// FuzzFrontConn: whatever a client sends, the front neither panics nor
// hangs, and complete lines without anything it must act on (commands it
// answers, literals) reach imapserver unchanged, however they are split
// into reads.
func FuzzFrontConn(f *testing.F) {
	f.Add([]byte("a LOGIN u p\r\nb ID NIL\r\nc NOOP\r\n"), uint16(5), true)
	f.Add([]byte("a APPEND INBOX {5+}\r\nhello\r\nb ID (\"x\" \"y\")\r\n"), uint16(3), true)
	f.Add([]byte("a APPEND {3}\r\nbox {2000+}\r\n"), uint16(100), true)
	f.Add([]byte("a LOGIN {100000+}\r\nxyz"), uint16(7), false)
	f.Add([]byte("s STARTTLS\r\nx NOOP\r\n"), uint16(4), false)
	f.Fuzz(func(t *testing.T, in []byte, chunk uint16, authed bool) {
		if chunk == 0 || len(in) > 64<<10 {
			return
		}
		srv := &Server{o: Options{MaxMessageSize: 1000}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		fc := &fakeConn{r: &chunkReader{b: in, n: int(chunk)}}
		tc := &trackedConn{Conn: fc, s: srv}
		tc.authed.Store(authed)
		front := newFrontConn(srv, tc, fc, false, true)
		var got []byte
		buf := make([]byte, 4096)
		for i := 0; ; i++ {
			if i > len(in)+10 {
				t.Fatal("Read keeps returning without consuming input")
			}
			n, err := front.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		up := bytes.ToUpper(in)
		plain := !bytes.ContainsAny(in, "{") && !bytes.Contains(up, []byte("ID")) &&
			!bytes.Contains(up, []byte("STARTTLS"))
		// An unfinished last line is held back: it is no command yet.
		want := in[:bytes.LastIndexByte(in, '\n')+1]
		if plain && !bytes.Equal(got, want) {
			t.Fatalf("input changed on its way:\n%q\nbecame\n%q", want, got)
		}
	})
}
