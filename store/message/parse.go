package message

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"sync"
)

// readBufSize is the size of the bufio.Reader used by Parse. Lines longer
// than this are processed in chunks.
const readBufSize = 32 << 10

// Parse reads a whole message from r in a single pass and returns its
// structure. Malformed input never causes an error; only a read error of r
// (other than io.EOF) is returned.
func Parse(r io.Reader) (*Structure, error) {
	p := parserPool.Get().(*parser)
	defer p.release()
	p.br.Reset(r)
	root, env := p.entity(0, false, true)
	if p.err != nil {
		return nil, p.err
	}
	s := &Structure{Root: root, Size: p.off, HeaderSize: root.BodyStart}
	if env != nil {
		s.Envelope = *env
	}
	return s, nil
}

// parserPool recycles parsers with their read and header buffers.
var parserPool = sync.Pool{New: func() any {
	return &parser{br: bufio.NewReaderSize(nil, readBufSize), bol: true}
}}

// maxPooledHeader is the largest header buffer kept in the pool.
const maxPooledHeader = 64 << 10

func (p *parser) release() {
	br, hdr := p.br, p.hdr[:0]
	if cap(hdr) > maxPooledHeader {
		hdr = nil
	}
	br.Reset(nil)
	*p = parser{br: br, hdr: hdr, bounds: p.bounds[:0], bol: true}
	parserPool.Put(p)
}

// chunk is a line of input, or a piece of a line longer than the read
// buffer.
type chunk struct {
	b        []byte // valid until the next read
	start    int64  // offset of b[0]
	lfBefore int64  // number of LFs before start
	bol      bool   // b starts at the beginning of a line
	eol      bool   // b ends with LF
	last     bool   // b is the last chunk of the input
	prevTerm int8   // length of the line break ending right before b
}

// boundaryHit records a boundary delimiter line that ended the current
// part(s).
type boundaryHit struct {
	set      bool
	close    bool  // "--boundary--"
	idx      int   // index into parser.bounds
	start    int64 // offset of the boundary line
	lfBefore int64
	prevTerm int8 // the line break before start, which belongs to the delimiter
}

type parser struct {
	br      *bufio.Reader
	off     int64 // offset of the next unread byte
	lf      int64 // LFs read so far
	bol     bool  // the next chunk starts a line
	lastCR  bool  // the previous chunk ended with CR
	term    int8  // length of the most recent line break
	eof     bool
	err     error
	cur     chunk
	pending bool // cur has been pushed back

	bounds [][]byte // active "--boundary" strings, innermost last
	hit    boundaryHit
	nparts int
	hdr    []byte // header buffer, reused
}

// next makes the next chunk available in p.cur.
func (p *parser) next() bool {
	if p.pending {
		p.pending = false
		return true
	}
	if p.eof {
		return false
	}
	b, err := p.br.ReadSlice('\n')
	if err != nil && err != bufio.ErrBufferFull {
		if err != io.EOF {
			p.err = err
		}
		p.eof = true
		if len(b) == 0 {
			return false
		}
	}
	c := chunk{b: b, start: p.off, lfBefore: p.lf, bol: p.bol, last: p.eof, prevTerm: p.term}
	n := len(b)
	p.off += int64(n)
	if b[n-1] == '\n' {
		c.eol = true
		p.lf++
		if (n >= 2 && b[n-2] == '\r') || (n == 1 && p.lastCR) {
			p.term = 2
		} else {
			p.term = 1
		}
		p.bol = true
	} else {
		p.bol = false
	}
	p.lastCR = b[n-1] == '\r'
	p.cur = c
	return true
}

// pos returns the offset of the next chunk next will return.
func (p *parser) pos() int64 {
	if p.pending {
		return p.cur.start
	}
	return p.off
}

// lfPos returns the LF count before the next chunk next will return.
func (p *parser) lfPos() int64 {
	if p.pending {
		return p.cur.lfBefore
	}
	return p.lf
}

// checkBoundary reports whether c is a delimiter line of an active
// multipart, and records it in p.hit if so. Inner boundaries are checked
// first.
func (p *parser) checkBoundary(c *chunk) bool {
	b := c.b
	if !c.bol || len(p.bounds) == 0 || len(b) < 3 || b[0] != '-' || b[1] != '-' {
		return false
	}
	if !c.eol && !c.last {
		// A partial line longer than the read buffer: not a delimiter.
		return false
	}
	for i := len(p.bounds) - 1; i >= 0; i-- {
		d := p.bounds[i]
		if !bytes.HasPrefix(b, d) {
			continue
		}
		rest := b[len(d):]
		closing := false
		if len(rest) >= 2 && rest[0] == '-' && rest[1] == '-' {
			closing = true
			rest = rest[2:]
		}
		if !onlyLWSP(rest) {
			continue
		}
		p.hit = boundaryHit{set: true, close: closing, idx: i, start: c.start, lfBefore: c.lfBefore, prevTerm: c.prevTerm}
		return true
	}
	return false
}

// onlyLWSP reports whether b consists of spaces and tabs followed by an
// optional line break.
func onlyLWSP(b []byte) bool {
	n := len(b)
	if n > 0 && b[n-1] == '\n' {
		n--
	}
	if n > 0 && b[n-1] == '\r' {
		n--
	}
	for _, c := range b[:n] {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

func isBlankLine(b []byte) bool {
	return (len(b) == 1 && b[0] == '\n') || (len(b) == 2 && b[0] == '\r' && b[1] == '\n')
}

// skipBody consumes input until a boundary of an active multipart or EOF.
func (p *parser) skipBody() {
	for p.next() {
		if p.checkBoundary(&p.cur) {
			return
		}
	}
}

// entity parses a MIME entity (header and body) starting at the current
// position. It returns when the entity's body ends: at EOF or at a
// boundary line of an enclosing multipart, recorded in p.hit.
func (p *parser) entity(depth int, digest, wantEnv bool) (*Part, *Envelope) {
	p.nparts++
	part := &Part{HeaderStart: p.pos()}
	bodyStart, lfAtBody := int64(-1), int64(0)
	hdr := p.hdr[:0]
	if !p.hit.set {
		for p.next() {
			c := &p.cur
			if p.checkBoundary(c) {
				break // header interrupted by a boundary: empty body
			}
			if c.bol && isBlankLine(c.b) {
				bodyStart, lfAtBody = p.off, p.lf
				break
			}
			if len(hdr)+len(c.b) > MaxHeaderSize {
				// Stop parsing the header; the rest is body.
				p.pending = true
				bodyStart, lfAtBody = c.start, c.lfBefore
				break
			}
			hdr = append(hdr, c.b...)
		}
	}
	if bodyStart < 0 {
		bodyStart, lfAtBody = p.pos(), p.lfPos()
		if h := &p.hit; h.set {
			// The line break before the delimiter belongs to it, not
			// to the header.
			bodyStart, lfAtBody = h.start, h.lfBefore
			if t := int64(h.prevTerm); t > 0 && h.start-t >= part.HeaderStart {
				bodyStart, lfAtBody = h.start-t, h.lfBefore-1
			}
		}
	}
	part.BodyStart = bodyStart

	var h header
	h.parse(hdr, wantEnv)
	p.hdr = hdr[:0]
	h.fill(part, digest)
	var env *Envelope
	if wantEnv {
		env = h.envelope(part.Params["charset"])
	}

	if !p.hit.set {
		switch {
		case part.Type == "multipart":
			p.multipart(part, depth)
		case part.Type == "message" && (part.Subtype == "rfc822" || part.Subtype == "global") &&
			isIdentityEncoding(part.Encoding) && depth < MaxDepth && p.nparts < MaxParts:
			child, cenv := p.entity(depth+1, false, true)
			part.Children = []*Part{child}
			part.Envelope = cenv
		default:
			p.skipBody()
		}
	}
	if part.Type == "multipart" && len(part.Children) == 0 {
		// Not split into parts (see Part): treat as text.
		part.Type, part.Subtype = "text", "plain"
	}
	p.finish(part, lfAtBody)
	return part, env
}

// multipart parses the body of a multipart part: preamble, parts and
// epilogue.
func (p *parser) multipart(part *Part, depth int) {
	boundary := part.Params["boundary"]
	if boundary == "" || depth >= MaxDepth || p.nparts >= MaxParts {
		p.skipBody()
		return
	}
	my := len(p.bounds)
	p.bounds = append(p.bounds, []byte("--"+boundary))
	digest := part.Subtype == "digest"
	p.skipBody() // preamble
	for p.hit.set && p.hit.idx == my && !p.hit.close {
		if p.nparts >= MaxParts {
			// Too many parts: the rest is not split up.
			p.hit = boundaryHit{}
			p.bounds = p.bounds[:my]
			p.skipBody()
			break
		}
		p.hit = boundaryHit{}
		child, _ := p.entity(depth+1, digest, false)
		part.Children = append(part.Children, child)
	}
	if p.hit.set && p.hit.idx == my && p.hit.close {
		// Epilogue: up to an enclosing boundary or EOF.
		p.hit = boundaryHit{}
		p.bounds = p.bounds[:my]
		p.skipBody()
	}
	p.bounds = p.bounds[:my]
}

// finish sets the end of part, whose body started at the LF count
// lfAtBody, from the boundary hit or EOF that ended it.
//
// Normally a part ends right before the line break that precedes the
// delimiter line. In degenerate cases (the part's header, or an embedded
// message's header, runs up to the delimiter) its body is empty, and a
// part never ends before its last child.
func (p *parser) finish(part *Part, lfAtBody int64) {
	if !p.hit.set {
		part.End = p.off
		part.Lines = p.lf - lfAtBody
		return
	}
	h := &p.hit
	end := max(h.start-int64(h.prevTerm), part.BodyStart)
	if n := len(part.Children); n > 0 {
		end = max(end, part.Children[n-1].End)
	}
	// LFs in [BodyStart, h.start); the last one ends at h.start.
	lines := h.lfBefore - lfAtBody
	if end < h.start && lines > 0 {
		lines--
	}
	part.End = end
	part.Lines = max(lines, 0)
}

func isIdentityEncoding(enc string) bool {
	switch strings.ToLower(enc) {
	case "", "7bit", "8bit", "binary":
		return true
	}
	return false
}
