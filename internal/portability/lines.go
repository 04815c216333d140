package portability

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// maxKeep is how much of a line the scanners look at. Longer lines (base64
// attachments, photos in vCards) are counted in full but only their start
// is kept: item boundaries and the properties the scanners need are short.
const maxKeep = 8 << 10

// lineScanner reads lines with their byte offsets, never holding more than
// maxKeep bytes of one line.
type lineScanner struct {
	br    *bufio.Reader
	off   int64  // offset of the next line
	start int64  // offset of the current line
	n     int64  // length of the current line including its newline
	buf   []byte // the first maxKeep bytes of the current line
	num   int    // 1-based number of the current line
	err   error
}

func newLineScanner(r io.Reader) *lineScanner {
	return &lineScanner{br: bufio.NewReaderSize(r, 64<<10)}
}

// next moves to the next line; false at the end or on a read error (err).
func (s *lineScanner) next() bool {
	s.start, s.n, s.buf = s.off, 0, s.buf[:0]
	for {
		frag, err := s.br.ReadSlice('\n')
		s.n += int64(len(frag))
		if room := maxKeep - len(s.buf); room > 0 {
			s.buf = append(s.buf, frag[:min(len(frag), room)]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		s.off += s.n
		if err != nil && !errors.Is(err, io.EOF) {
			s.err = err
			return false
		}
		if s.n == 0 {
			return false
		}
		s.num++
		return true
	}
}

// line is the current line without its line ending (cut at maxKeep bytes).
func (s *lineScanner) line() []byte {
	return bytes.TrimRight(s.buf, "\r\n")
}

// blank reports whether the current line is empty.
func (s *lineScanner) blank() bool { return len(s.line()) == 0 && s.n <= 2 }

// crlfReader turns bare LF line endings into CRLF, as mail on the wire has
// them (RFC 5322 section 2.1); CRLF stays as it is.
type crlfReader struct {
	r      io.Reader
	prevCR bool
	buf    []byte
	out    []byte
}

func newCRLFReader(r io.Reader) *crlfReader {
	return &crlfReader{r: r, buf: make([]byte, 32<<10)}
}

func (c *crlfReader) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		n, err := c.r.Read(c.buf)
		if n > 0 {
			out := c.out[:0]
			for _, b := range c.buf[:n] {
				if b == '\n' && !c.prevCR {
					out = append(out, '\r')
				}
				out = append(out, b)
				c.prevCR = b == '\r'
			}
			c.out = out
		}
		if err != nil {
			if len(c.out) > 0 {
				break
			}
			return 0, err
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// unquoteReader undoes mboxrd quoting: a line that starts with one or more
// '>' followed by "From " loses one '>'.
type unquoteReader struct {
	br        *bufio.Reader
	lineStart bool
	pending   []byte
}

func newUnquoteReader(r io.Reader) *unquoteReader {
	return &unquoteReader{br: bufio.NewReaderSize(r, 32<<10), lineStart: true}
}

func (u *unquoteReader) Read(p []byte) (int, error) {
	if len(u.pending) == 0 {
		if u.lineStart {
			u.lineStart = false
			if u.quoted() {
				u.br.Discard(1)
			}
		}
		frag, err := u.br.ReadSlice('\n')
		if len(frag) > 0 && frag[len(frag)-1] == '\n' {
			u.lineStart = true
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) && len(frag) == 0 {
			return 0, err
		}
		u.pending = frag
	}
	n := copy(p, u.pending)
	u.pending = u.pending[n:]
	return n, nil
}

// quoted peeks at the start of a line: ">+From ".
func (u *unquoteReader) quoted() bool {
	for k := 1; k <= 256; k++ {
		b, err := u.br.Peek(k + 5)
		if err != nil && len(b) < k+5 {
			return false
		}
		if b[k-1] != '>' {
			return false
		}
		if string(b[k:k+5]) == "From " {
			return true
		}
	}
	return false
}
