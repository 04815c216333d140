// Package message parses RFC 5322 / MIME messages once, in a single
// streaming pass, into a compact description of their envelope and MIME
// structure with exact byte offsets, so that an IMAP server can later answer
// ENVELOPE, BODYSTRUCTURE, BODY[section]<partial>, BINARY and header searches
// by reading only the byte ranges it needs.
//
// Parsing never fails on malformed MIME (the result is a best-effort
// structure, in the spirit of Dovecot); only I/O errors of the underlying
// reader are reported. Memory use is bounded independently of the message
// size: bodies are never buffered, a part's header is kept only up to
// MaxHeaderSize, nesting is limited to MaxDepth and the number of parts to
// MaxParts.
//
// A Structure is cached with Marshal and read back with Unmarshal; the
// encoding is a versioned binary format designed to be decoded quickly.
package message

import (
	"strings"
	"time"
)

// Parser limits.
const (
	// MaxHeaderSize is the largest header block (per part) that is parsed.
	// If a header is longer, parsing of that header stops at the first line
	// that would exceed the limit and the rest is treated as the part's
	// body.
	MaxHeaderSize = 1 << 20
	// MaxDepth is the deepest nesting level at which multipart and
	// message/rfc822 parts are still descended into. The root part is at
	// level 0. Deeper containers become leaf parts (see Part).
	MaxDepth = 20
	// MaxParts is the largest number of parts (including the root) in a
	// Structure. Content beyond it is not split into parts.
	MaxParts = 10000
)

// Placeholders used to fill in an address that lacks a local part or a
// domain, so that such an address is never mistaken for an IMAP group
// marker (which is recognised by an empty Host). Same values as Dovecot.
const (
	MissingMailbox = "MISSING_MAILBOX"
	MissingDomain  = "MISSING_DOMAIN"
)

// Address is one entry of an address list header, in the form IMAP's
// ENVELOPE wants it.
//
// Groups (RFC 5322 "name: a@b, c@d;") are represented as in RFC 3501
// section 7.4.2 and in go-imap: a group start marker is an Address with an
// empty Host and the group's display name (decoded) in Mailbox; it is
// followed by the group members and by a group end marker, the zero
// Address. Use IsGroupStart and IsGroupEnd to recognise them. Ordinary
// addresses always have a non-empty Mailbox and Host (MissingMailbox and
// MissingDomain fill gaps), so the markers are unambiguous and the slice
// can be handed to go-imap's imap.Address unchanged.
type Address struct {
	Name    string // display name, decoded to UTF-8 (RFC 2047 and 8-bit)
	Mailbox string // local part; for a group start, the group name
	Host    string // domain; empty only for group markers
}

// IsGroupStart reports whether a is the start marker of a group, in which
// case a.Mailbox holds the group name.
func (a Address) IsGroupStart() bool { return a.Host == "" && a.Mailbox != "" }

// IsGroupEnd reports whether a is the end marker of a group.
func (a Address) IsGroupEnd() bool { return a.Host == "" && a.Mailbox == "" }

// Addr returns "mailbox@host", or "" for group markers.
func (a Address) Addr() string {
	if a.Host == "" {
		return ""
	}
	return a.Mailbox + "@" + a.Host
}

// Envelope holds the header fields of IMAP's ENVELOPE.
type Envelope struct {
	Date      time.Time // zero if absent or unparseable
	Subject   string    // decoded to UTF-8
	From      []Address
	Sender    []Address
	ReplyTo   []Address
	To        []Address
	Cc        []Address
	Bcc       []Address
	InReplyTo []string // msg-ids without angle brackets
	MessageID string   // without angle brackets
}

// Part describes one MIME entity.
//
// Type and Subtype are lower case. A part without Content-Type is
// text/plain with Params {"charset": "us-ascii"} (message/rfc822 with no
// params inside multipart/digest); an unparseable Content-Type is treated as
// text/plain as well.
//
// Invariants useful for rendering BODYSTRUCTURE:
//   - Type == "multipart" if and only if len(Children) >= 1 and every child
//     is a part of the multipart. A multipart that could not be split (no
//     boundary parameter, boundary never found, MaxDepth or MaxParts
//     reached) is turned into a text/plain leaf, keeping its Params.
//   - A message/rfc822 or message/global part has exactly one child, the
//     embedded message's root part, and a non-nil Envelope, unless it could
//     not be descended into (a Content-Transfer-Encoding other than 7bit,
//     8bit or binary, MaxDepth, MaxParts, or an empty body ended by a
//     boundary), in which case Children and Envelope are nil and it should
//     be rendered as a basic part. Use IsMessage to tell.
type Part struct {
	Type, Subtype string
	// Params are the Content-Type parameters: keys lower case, values
	// decoded (RFC 2231 continuations and charsets, RFC 2047 words, except
	// for "boundary" which is kept verbatim). Nil if there are none.
	Params map[string]string
	// ID and MD5 are the raw Content-ID and Content-MD5 values (trimmed);
	// Description is the unfolded raw Content-Description (not RFC 2047
	// decoded, as IMAP sends it as is); Location the Content-Location.
	ID, Description string
	// Encoding is the Content-Transfer-Encoding token as written, "7BIT"
	// if absent.
	Encoding string
	// Disposition is the lower-cased Content-Disposition type, "" if
	// absent; DispositionParams are decoded like Params.
	Disposition       string
	DispositionParams map[string]string
	Language          []string
	Location          string
	MD5               string
	// Byte offsets in the whole message. [HeaderStart, BodyStart) is the
	// part's header including the empty line that ends it (IMAP
	// BODY[n.MIME], or BODY[HEADER] for the root); [BodyStart, End) is its
	// body (BODY[n]; BODY[TEXT] for the root). For parts of a multipart,
	// the line break before a boundary line belongs to the boundary.
	HeaderStart, BodyStart, End int64
	// Lines is the number of LF characters in the body. It is computed
	// for every part, but IMAP only uses it for text/* and message/rfc822.
	Lines int64
	// Children are the parts of a multipart, or the root part of the
	// message embedded in a message/rfc822 part.
	Children []*Part
	// Envelope is the embedded message's envelope, for message/rfc822.
	Envelope *Envelope
}

// Size returns the size of the part's body in bytes.
func (p *Part) Size() int64 { return p.End - p.BodyStart }

// HeaderSize returns the size of the part's header in bytes.
func (p *Part) HeaderSize() int64 { return p.BodyStart - p.HeaderStart }

// MediaType returns "type/subtype".
func (p *Part) MediaType() string { return p.Type + "/" + p.Subtype }

// IsMultipart reports whether p is a multipart with children.
func (p *Part) IsMultipart() bool { return p.Type == "multipart" && len(p.Children) > 0 }

// IsMessage reports whether p is an embedded message (message/rfc822 or
// message/global) that was parsed: it then has exactly one child, the
// embedded message's root, and an Envelope.
func (p *Part) IsMessage() bool {
	return p.Type == "message" && len(p.Children) == 1 && p.Envelope != nil
}

// Filename returns the file name of the part: the Content-Disposition
// filename parameter, or else the Content-Type name parameter.
func (p *Part) Filename() string {
	if f := p.DispositionParams["filename"]; f != "" {
		return f
	}
	return p.Params["name"]
}

// Charset returns the charset parameter, or "us-ascii" for text parts
// without one.
func (p *Part) Charset() string {
	if c := p.Params["charset"]; c != "" {
		return c
	}
	if p.Type == "text" {
		return "us-ascii"
	}
	return ""
}

// Structure is the parsed description of a whole message.
type Structure struct {
	Envelope Envelope
	// Root is the message itself: HeaderStart 0, BodyStart HeaderSize,
	// End Size.
	Root *Part
	// Size is the total size of the message in bytes; HeaderSize the size
	// of its header including the empty line.
	Size       int64
	HeaderSize int64
}

// Part looks up a part by its IMAP part number (RFC 3501 section 6.4.5),
// e.g. []int{1, 2, 3} for "1.2.3".
//
// Part 1 of a non-multipart message (or embedded message) is its body,
// i.e. the root (or embedded root) part. The numbering continues into
// message/rfc822 parts: if part 2 is a message/rfc822 whose message is
// multipart, 2.1 is the first part of that multipart; if it is not
// multipart, 2.1 is the embedded message's body. An empty path returns the
// root part.
func (s *Structure) Part(path []int) (*Part, bool) {
	if s == nil || s.Root == nil {
		return nil, false
	}
	p, root := s.Root, true
	for _, n := range path {
		if n < 1 {
			return nil, false
		}
		if !root && p.IsMessage() {
			// Step into the embedded message, whose numbering is
			// that of a top-level message.
			p, root = p.Children[0], true
		}
		if root {
			// Part 1 of a non-multipart message is its body.
			root = false
			if !p.IsMultipart() {
				if n != 1 {
					return nil, false
				}
				continue
			}
		} else if !p.IsMultipart() {
			return nil, false
		}
		if n > len(p.Children) {
			return nil, false
		}
		p = p.Children[n-1]
	}
	return p, true
}

// Section returns the byte range [start, end) of the message that IMAP's
// BODY[section] returns for the given part path and section text specifier.
//
// specifier is "" (the whole message for an empty path, else the part's
// body), "MIME" (the part's header; not valid with an empty path),
// "HEADER" or "TEXT" (the header or text of the message for an empty path,
// or of the message embedded in a message/rfc822 part), or
// "HEADER.FIELDS ..." / "HEADER.FIELDS.NOT ..." (the same range as
// HEADER: the caller filters the fields, see FilterHeader). Case is
// ignored. The <partial> range is the caller's job: it applies to the
// section's bytes after header filtering.
func (s *Structure) Section(path []int, specifier string) (start, end int64, ok bool) {
	spec := strings.ToUpper(strings.TrimSpace(specifier))
	if strings.HasPrefix(spec, "HEADER.FIELDS") {
		spec = "HEADER"
	}
	if len(path) == 0 {
		if s == nil {
			return 0, 0, false
		}
		switch spec {
		case "":
			return 0, s.Size, true
		case "HEADER":
			return 0, s.HeaderSize, true
		case "TEXT":
			return s.HeaderSize, s.Size, true
		}
		return 0, 0, false
	}
	p, ok := s.Part(path)
	if !ok {
		return 0, 0, false
	}
	switch spec {
	case "":
		return p.BodyStart, p.End, true
	case "MIME":
		return p.HeaderStart, p.BodyStart, true
	case "HEADER", "TEXT":
		if !p.IsMessage() {
			return 0, 0, false
		}
		c := p.Children[0]
		if spec == "HEADER" {
			return c.HeaderStart, c.BodyStart, true
		}
		return c.BodyStart, c.End, true
	}
	return 0, 0, false
}

// Walk calls fn for every part in depth-first pre-order with its IMAP part
// number (nil for the root of a multipart message, {1} for the root of a
// single-part message). If fn returns false, the part's children are
// skipped. The path slice is reused between calls; copy it to keep it.
//
// The embedded root of a message/rfc822 part is visited only if it is a
// multipart (it has no number of its own otherwise: its body is the
// message/rfc822 part's n.1, visited as the embedded root).
func (s *Structure) Walk(fn func(path []int, p *Part) bool) {
	if s == nil || s.Root == nil {
		return
	}
	path := make([]int, 0, 8)
	if !s.Root.IsMultipart() {
		path = append(path, 1)
	}
	walk(s.Root, path, fn)
}

func walk(p *Part, path []int, fn func([]int, *Part) bool) {
	if !fn(path, p) {
		return
	}
	switch {
	case p.IsMultipart():
		for i, c := range p.Children {
			walk(c, append(path, i+1), fn)
		}
	case p.IsMessage():
		c := p.Children[0]
		if c.IsMultipart() {
			for i, cc := range c.Children {
				walk(cc, append(path, i+1), fn)
			}
		} else {
			walk(c, append(path, 1), fn)
		}
	}
}
