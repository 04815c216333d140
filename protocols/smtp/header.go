package smtp

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/mail"
	"strings"
	"time"
)

// maxHops is the most Received fields a message may carry before it is
// taken for a mail loop (RFC 5321 section 6.3).
const maxHops = 50

// maxHeaderBytes bounds the header block, the only part of a message held in
// memory while it is received (the body streams).
const maxHeaderBytes = 256 << 10

var (
	errHeaderTooBig = smtpErr(552, 5, 3, 4, "Message header too large")
	errBadHeader    = smtpErr(550, 5, 6, 0, "Malformed message header")
	errEmptyMessage = smtpErr(550, 5, 6, 0, "Empty message")
)

// field is one header field as received, folded lines and line end included.
type field struct {
	name string // without the colon and trailing white space
	raw  []byte
}

// value returns the unfolded value, without the name and surrounding space.
func (f field) value() string {
	v := f.raw[bytes.IndexByte(f.raw, ':')+1:]
	s := strings.NewReplacer("\r\n", "", "\n", "").Replace(string(v))
	return strings.TrimSpace(s)
}

func (f field) is(name string) bool { return strings.EqualFold(f.name, name) }

// header is a message's header block.
type header struct {
	fields []field
	sep    []byte // the empty line ending the block ("" if the message has no body)
}

// readHeader reads the header block from br, up to maxHeaderBytes.
func readHeader(br *bufio.Reader) (*header, error) {
	h := &header{}
	total := 0
	for {
		line, err := readLine(br, maxHeaderBytes-total)
		total += len(line)
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errHeaderTooBig
		}
		if len(line) > 0 {
			switch {
			case isEmptyLine(line):
				h.sep = line
				return h, nil
			case line[0] == ' ' || line[0] == '\t':
				if len(h.fields) == 0 {
					return nil, errBadHeader
				}
				last := &h.fields[len(h.fields)-1]
				last.raw = append(last.raw, line...)
			default:
				name, ok := fieldName(line)
				if !ok {
					return nil, errBadHeader
				}
				h.fields = append(h.fields, field{name: name, raw: line})
			}
		}
		if err == io.EOF {
			if len(h.fields) == 0 {
				return nil, errEmptyMessage
			}
			return h, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// readLine reads one line (with its end) of at most max bytes.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > max {
			return nil, bufio.ErrBufferFull
		}
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		return line, err
	}
}

func isEmptyLine(b []byte) bool { return string(b) == "\r\n" || string(b) == "\n" }

// fieldName parses "Name:" at the start of a field (RFC 5322 section 2.2:
// printable ASCII except colon; white space before the colon is tolerated).
func fieldName(line []byte) (string, bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return "", false
	}
	name := strings.TrimRight(string(line[:i]), " \t")
	if name == "" {
		return "", false
	}
	for j := 0; j < len(name); j++ {
		if name[j] < 33 || name[j] > 126 {
			return "", false
		}
	}
	return name, true
}

func (h *header) all(name string) []field {
	var out []field
	for _, f := range h.fields {
		if f.is(name) {
			out = append(out, f)
		}
	}
	return out
}

func (h *header) has(name string) bool { return len(h.all(name)) > 0 }

// looping reports a message that went through too many hosts.
func (h *header) looping() bool { return len(h.all("Received")) > maxHops }

// writeTo writes the fields for which keep returns true, then the separator.
func (h *header) writeTo(w io.Writer, keep func(field) bool) error {
	for _, f := range h.fields {
		if keep != nil && !keep(f) {
			continue
		}
		if _, err := w.Write(f.raw); err != nil {
			return err
		}
	}
	_, err := w.Write(h.sep)
	return err
}

// bytes returns the header block as received.
func (h *header) bytes() []byte {
	var b bytes.Buffer
	h.writeTo(&b, nil)
	return b.Bytes()
}

// addressParser decodes RFC 2047 display names in any charset without
// failing: only the addresses matter here.
var addressParser = &mail.AddressParser{WordDecoder: &mime.WordDecoder{
	CharsetReader: func(charset string, input io.Reader) (io.Reader, error) { return input, nil },
}}

// fromAddresses returns the addresses of the From field. There must be
// exactly one From field (RFC 5322 section 3.6).
func (h *header) fromAddresses() ([]string, error) {
	froms := h.all("From")
	if len(froms) != 1 {
		return nil, fmt.Errorf("%d From fields", len(froms))
	}
	return parseAddressList(froms[0].value())
}

func parseAddressList(v string) ([]string, error) {
	list, err := addressParser.ParseList(v)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(list))
	for _, a := range list {
		out = append(out, strings.ToLower(a.Address))
	}
	if len(out) == 0 {
		return nil, errors.New("no address")
	}
	return out, nil
}

func domainOf(addr string) string {
	return strings.ToLower(addr[strings.LastIndexByte(addr, '@')+1:])
}

// fold breaks a long header field before the separators sep, so lines stay
// well under 998 octets (RFC 5322 section 2.1.1). It returns "Name: value\r\n".
func fold(name, value string, sep string) string {
	parts := strings.SplitAfter(value, sep)
	var b strings.Builder
	b.WriteString(name)
	b.WriteString(": ")
	line := len(name) + 2
	for i, p := range parts {
		if i > 0 && line+len(p) > 76 {
			b.WriteString("\r\n\t")
			p = strings.TrimLeft(p, " ")
			line = 1
		}
		b.WriteString(p)
		line += len(p)
	}
	b.WriteString("\r\n")
	return b.String()
}

// newID returns a random id for Received fields, Message-IDs and MIME boundaries.
func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// cleanHelo keeps a HELO name printable inside a Received field.
func cleanHelo(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune(".-_[]:", r):
			return r
		}
		return -1
	}, s)
	if len(s) > 255 {
		s = s[:255]
	}
	if s == "" {
		s = "unknown"
	}
	return s
}

func addressLiteral(ip net.IP) string {
	if ip == nil {
		return "[unknown]"
	}
	if ip.To4() == nil {
		return "[IPv6:" + ip.String() + "]"
	}
	return "[" + ip.String() + "]"
}

// received builds the Received field (RFC 5321 section 4.4) with the
// protocol names of RFC 3848 and RFC 6531. The submitting client's address
// is left out of submissions: it would tell every recipient where a pupil or
// teacher was when they wrote.
func (ss *session) received(id string, forAddr string) string {
	var b strings.Builder
	if ss.mode == modeMX {
		fmt.Fprintf(&b, "from %s (%s)\r\n\t", cleanHelo(ss.conn.Hostname()), addressLiteral(ss.ip))
	}
	fmt.Fprintf(&b, "by %s (kreide) with ", ss.s.o.Hostname)
	proto := "ESMTP"
	if ss.mailOpts.UTF8 {
		proto = "UTF8SMTP"
	}
	if ss.tls != nil {
		proto += "S"
	}
	if ss.account != nil {
		proto += "A"
	}
	b.WriteString(proto)
	if ss.tls != nil {
		fmt.Fprintf(&b, "\r\n\t(%s, %s)", tls.VersionName(ss.tls.Version), tls.CipherSuiteName(ss.tls.CipherSuite))
	}
	fmt.Fprintf(&b, "\r\n\tid %s", id)
	if forAddr != "" && isASCII(forAddr) {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", forAddr)
	}
	fmt.Fprintf(&b, ";\r\n\t%s", time.Now().Format(time.RFC1123Z))
	return "Received: " + b.String() + "\r\n"
}
