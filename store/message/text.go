package message

import (
	"bufio"
	"io"
	"strings"

	"github.com/emersion/go-message/charset"
)

// DecodeReader returns a reader of part's body (the bytes [BodyStart, End)
// read from body) with its Content-Transfer-Encoding undone: base64 and
// quoted-printable are decoded leniently (invalid characters are skipped,
// malformed escapes kept as they are, decoding errors never reported), any
// other encoding is passed through. This is what IMAP BINARY[section]
// returns. Read errors of body are passed on.
func DecodeReader(part *Part, body io.Reader) io.Reader {
	switch strings.ToLower(part.Encoding) {
	case "base64":
		return &base64Reader{r: body}
	case "quoted-printable":
		return &qpReader{br: bufio.NewReaderSize(body, 4096)}
	}
	return body
}

// TextReader returns a reader of part's body (the bytes [BodyStart, End)
// read from body) decoded to UTF-8 text, for IMAP SEARCH BODY/TEXT: the
// Content-Transfer-Encoding is undone as by DecodeReader, then the charset
// parameter (any charset github.com/emersion/go-message/charset knows) is
// converted to UTF-8. Unknown charsets are passed through unconverted.
func TextReader(part *Part, body io.Reader) io.Reader {
	r := DecodeReader(part, body)
	if cs := part.Params["charset"]; !isUTF8Compatible(cs) {
		if cr, err := charset.Reader(cs, r); err == nil {
			return cr
		}
	}
	return r
}

var base64Values = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// base64Reader decodes base64 leniently: characters outside the alphabet
// are ignored and '=' ends the current quantum, so concatenated encodings
// decode too.
type base64Reader struct {
	r      io.Reader
	in     [4096]byte
	out    []byte
	outBuf [3072 + 3]byte
	quant  uint32 // bits of the current quantum
	nq     int    // number of characters in it
	err    error
}

func (d *base64Reader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		n, err := d.r.Read(d.in[:])
		d.err = err
		out := d.outBuf[:0]
		for _, c := range d.in[:n] {
			v := base64Values[c]
			if v == 0xff {
				if c == '=' {
					out = d.flush(out)
				}
				continue
			}
			d.quant = d.quant<<6 | uint32(v)
			d.nq++
			if d.nq == 4 {
				out = append(out, byte(d.quant>>16), byte(d.quant>>8), byte(d.quant))
				d.quant, d.nq = 0, 0
			}
		}
		if err != nil {
			out = d.flush(out)
		}
		d.out = out
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

// flush emits the bytes of an incomplete quantum.
func (d *base64Reader) flush(out []byte) []byte {
	switch d.nq {
	case 2:
		out = append(out, byte(d.quant>>4))
	case 3:
		out = append(out, byte(d.quant>>10), byte(d.quant>>2))
	}
	d.quant, d.nq = 0, 0
	return out
}

// qpReader decodes quoted-printable leniently, line by line: trailing
// white space is removed, "=" at the end of a line joins it with the next,
// "=XX" is decoded (hex digits in either case) and any other "=" is kept.
type qpReader struct {
	br    *bufio.Reader
	out   []byte
	buf   []byte
	carry []byte // an escape cut at the end of a partial line
	err   error
}

func (d *qpReader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		line, err := d.br.ReadSlice('\n')
		complete := true
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: decode it in pieces.
			err, complete = nil, false
		}
		d.err = err
		if len(d.carry) > 0 {
			line = append(d.carry, line...)
			d.carry = nil
		}
		if !complete {
			// Keep a trailing "=" or "=X" for the next piece.
			for k := 1; k <= 2 && k <= len(line); k++ {
				if line[len(line)-k] == '=' {
					d.carry = append([]byte(nil), line[len(line)-k:]...)
					line = line[:len(line)-k]
					break
				}
			}
		}
		d.out = d.decode(d.buf[:0], line, complete)
		d.buf = d.out[:0]
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

func (d *qpReader) decode(out, line []byte, complete bool) []byte {
	var nl []byte
	body := line
	if complete {
		if n := len(body); n > 0 && body[n-1] == '\n' {
			nl = []byte("\n")
			body = body[:n-1]
			if n := len(body); n > 0 && body[n-1] == '\r' {
				nl = []byte("\r\n")
				body = body[:n-1]
			}
		}
		// Transport padding.
		for n := len(body); n > 0 && (body[n-1] == ' ' || body[n-1] == '\t'); n = len(body) {
			body = body[:n-1]
		}
		if n := len(body); n > 0 && body[n-1] == '=' {
			body = body[:n-1]
			nl = nil // soft line break
		}
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c == '=' && i+2 < len(body) {
			if h, ok := unhex2(body[i+1], body[i+2]); ok {
				out = append(out, h)
				i += 2
				continue
			}
		}
		out = append(out, c)
	}
	return append(out, nl...)
}
