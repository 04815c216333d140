package imap

import (
	"errors"
	"io"
	"strings"

	"github.com/emersion/go-imap/v2"

	"kreide/store/message"
)

// maxHeaderRead bounds the header block HEADER.FIELDS reads into memory
// (the parser never makes a header longer than message.MaxHeaderSize).
const maxHeaderRead = 2 * message.MaxHeaderSize

// section is a prepared FETCH BODY[...] or BINARY[...]: its exact size
// (the literal's length) and where its bytes come from.
type section struct {
	size int64
	data []byte        // filtered header fields, in memory
	r    io.ReaderAt   // otherwise bytes [off, off+size) of the message,
	off  int64         //
	part *message.Part // or, for BINARY, part's decoded body from offset skip
	skip int64
}

// writeTo streams the section; it never holds more than a copy buffer.
func (sec section) writeTo(w io.Writer) error {
	switch {
	case sec.size == 0:
		return nil
	case sec.data != nil:
		_, err := w.Write(sec.data)
		return err
	case sec.part != nil:
		dec := message.DecodeReader(sec.part, io.NewSectionReader(sec.r, sec.part.BodyStart, sec.part.Size()))
		if _, err := io.CopyN(io.Discard, dec, sec.skip); err != nil {
			return err
		}
		_, err := io.CopyN(w, dec, sec.size)
		return err
	default:
		_, err := io.CopyN(w, io.NewSectionReader(sec.r, sec.off, sec.size), sec.size)
		return err
	}
}

// partial applies <offset.size> to a section of total bytes (RFC 9051
// 6.4.5: an offset beyond the end gives the empty string).
func partial(total int64, p *imap.SectionPartial) (off, size int64) {
	if p == nil {
		return 0, total
	}
	off = min(max(p.Offset, 0), total)
	size = min(max(p.Size, 0), total-off)
	return off, size
}

// ownHeader reports whether item is the message's own header: HEADER,
// HEADER.FIELDS (.NOT) or RFC822.HEADER without a part number.
func ownHeader(item *imap.FetchItemBodySection) bool {
	return len(item.Part) == 0 && item.Specifier == imap.PartSpecifierHeader
}

// bodySection prepares BODY[section]<partial>: the message's own header
// from the store's header cache when it has one (the content stays
// closed), anything else from the cached structure's byte offsets. A
// section that does not exist is the empty string.
func (c *content) bodySection(item *imap.FetchItemBodySection) (section, error) {
	filter := len(item.HeaderFields) > 0 || len(item.HeaderFieldsNot) > 0
	if c.m.Header != nil && ownHeader(item) {
		data := c.m.Header
		if filter {
			data = filterHeader(data, item)
		}
		off, size := partial(int64(len(data)), item.Partial)
		return section{size: size, data: data[off : off+size]}, nil
	}
	start, end, ok := c.m.Structure.Section(item.Part, string(item.Specifier))
	if !ok {
		return section{}, nil
	}
	if end <= start && !filter {
		return section{}, nil
	}
	br, err := c.reader()
	if err != nil {
		return section{}, err
	}
	if !filter {
		off, size := partial(end-start, item.Partial)
		return section{size: size, r: br, off: start + off}, nil
	}
	buf := make([]byte, min(end-start, maxHeaderRead))
	if _, err := br.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
		return section{}, c.s.mapErr(err)
	}
	data := filterHeader(buf, item)
	off, size := partial(int64(len(data)), item.Partial)
	return section{size: size, data: data[off : off+size]}, nil
}

// filterHeader applies HEADER.FIELDS or HEADER.FIELDS.NOT to a header block.
func filterHeader(header []byte, item *imap.FetchItemBodySection) []byte {
	names, not := item.HeaderFields, false
	if len(names) == 0 {
		names, not = item.HeaderFieldsNot, true
	}
	return message.FilterHeader(header, names, not)
}

// binarySection prepares BINARY[part]<partial> (RFC 3516): the part's body
// with its Content-Transfer-Encoding undone. Its size is only known by
// decoding it once (streaming, into nothing) before it is sent.
func (c *content) binarySection(path []int, p *imap.SectionPartial) (section, error) {
	br, err := c.reader()
	if err != nil {
		return section{}, err
	}
	if len(path) == 0 {
		off, size := partial(c.m.Size, p)
		return section{size: size, r: br, off: off}, nil
	}
	part, ok := c.m.Structure.Part(path)
	if !ok {
		return section{}, nil
	}
	enc := strings.ToLower(part.Encoding)
	switch {
	case part.IsMultipart(), part.IsMessage(), enc == "", enc == "7bit", enc == "8bit", enc == "binary":
		off, size := partial(part.Size(), p)
		return section{size: size, r: br, off: part.BodyStart + off}, nil
	case enc != "base64" && enc != "quoted-printable":
		return section{}, no(imap.ResponseCodeUnknownCTE, "Unknown Content-Transfer-Encoding "+part.Encoding)
	}
	total, err := io.Copy(io.Discard, message.DecodeReader(part, io.NewSectionReader(br, part.BodyStart, part.Size())))
	if err != nil {
		return section{}, c.s.mapErr(err)
	}
	off, size := partial(total, p)
	return section{size: size, r: br, part: part, skip: off}, nil
}
