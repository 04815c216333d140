package imap

import (
	"bytes"
	"io"
	"testing"

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
