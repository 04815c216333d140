package message

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Header fields the parser looks at.
const (
	fContentType = iota
	fContentTransferEncoding
	fContentID
	fContentDescription
	fContentDisposition
	fContentLanguage
	fContentLocation
	fContentMD5
	fDate
	fSubject
	fFrom
	fSender
	fReplyTo
	fTo
	fCc
	fBcc
	fInReplyTo
	fMessageID
	nFields
	firstEnvelopeField = fDate
)

// fieldID returns the index of a known field name, or -1.
func fieldID(name []byte) int {
	if len(name) < 2 || len(name) > 25 {
		return -1
	}
	var buf [25]byte
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	switch string(buf[:len(name)]) {
	case "content-type":
		return fContentType
	case "content-transfer-encoding":
		return fContentTransferEncoding
	case "content-id":
		return fContentID
	case "content-description":
		return fContentDescription
	case "content-disposition":
		return fContentDisposition
	case "content-language":
		return fContentLanguage
	case "content-location":
		return fContentLocation
	case "content-md5":
		return fContentMD5
	case "date":
		return fDate
	case "subject":
		return fSubject
	case "from":
		return fFrom
	case "sender":
		return fSender
	case "reply-to":
		return fReplyTo
	case "to":
		return fTo
	case "cc":
		return fCc
	case "bcc":
		return fBcc
	case "in-reply-to":
		return fInReplyTo
	case "message-id":
		return fMessageID
	}
	return -1
}

// header holds the unfolded raw values of the known fields of one header
// block (first occurrence of each).
type header struct {
	v   [nFields]string
	has [nFields]bool
}

func (h *header) parse(hdr []byte, wantEnv bool) {
	forEachField(hdr, func(name, value, _ []byte) bool {
		id := fieldID(name)
		if id < 0 || h.has[id] || (!wantEnv && id >= firstEnvelopeField) {
			return true
		}
		h.has[id] = true
		if len(value) > maxFieldLen+1000 {
			value = value[:maxFieldLen+1000] // before unfolding: bound the copy
		}
		h.v[id] = truncateUTF8(unfold(value), maxFieldLen)
		return true
	})
}

// maxFieldLen bounds the values of the header fields kept in a Structure,
// so that its size stays small whatever the header holds.
const maxFieldLen = 64 << 10

// truncateUTF8 cuts s to at most n bytes, not inside a UTF-8 sequence.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for i := n; i > n-utf8.UTFMax && i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i]
		}
	}
	return s[:n]
}

// forEachField calls fn for every well-formed field of a raw header block
// with the field name, its raw value (after the colon, including folded
// continuation lines and the final line break) and the raw field. Lines that
// are not fields (no colon, bad name, stray continuation lines) are skipped.
// Iteration stops if fn returns false.
func forEachField(hdr []byte, fn func(name, value, raw []byte) bool) {
	for i := 0; i < len(hdr); {
		j := lineEnd(hdr, i)
		for j < len(hdr) && (hdr[j] == ' ' || hdr[j] == '\t') {
			j = lineEnd(hdr, j)
		}
		raw := hdr[i:j]
		i = j
		if raw[0] == ' ' || raw[0] == '\t' {
			continue
		}
		colon := bytes.IndexByte(raw, ':')
		if colon <= 0 {
			continue
		}
		name := bytes.TrimRight(raw[:colon], " \t")
		if !validFieldName(name) {
			continue
		}
		if !fn(name, raw[colon+1:], raw) {
			return
		}
	}
}

func lineEnd(b []byte, i int) int {
	if k := bytes.IndexByte(b[i:], '\n'); k >= 0 {
		return i + k + 1
	}
	return len(b)
}

func validFieldName(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

// unfold removes line breaks from a raw field value and trims surrounding
// white space.
func unfold(v []byte) string {
	v = bytes.Trim(v, " \t\r\n")
	if bytes.IndexByte(v, '\n') < 0 && bytes.IndexByte(v, '\r') < 0 {
		return string(v)
	}
	buf := make([]byte, 0, len(v))
	for _, c := range v {
		if c != '\r' && c != '\n' {
			buf = append(buf, c)
		}
	}
	return string(buf)
}

// FilterHeader returns the fields of a raw header block whose names are in
// names (case-insensitively), or not in names if not is true, followed by
// an empty line: the contents of IMAP's BODY[HEADER.FIELDS (names)] and
// BODY[HEADER.FIELDS.NOT (names)]. Fields are returned as written,
// including folding. Lines that are not header fields are dropped.
func FilterHeader(header []byte, names []string, not bool) []byte {
	nl := []byte("\r\n")
	if len(header) > 0 && !bytes.Contains(header, nl) {
		nl = nl[1:] // bare-LF message
	}
	out := make([]byte, 0, min(len(header), 1024))
	forEachField(header, func(name, _, raw []byte) bool {
		in := slices.ContainsFunc(names, func(n string) bool { return equalFoldASCII(n, name) })
		if in != not {
			out = append(out, raw...)
			if raw[len(raw)-1] != '\n' {
				out = append(out, nl...)
			}
		}
		return true
	})
	return append(out, nl...)
}

// equalFoldASCII compares a field name case-insensitively in ASCII, as
// RFC 5322 field names are (no Unicode folding, no allocation).
func equalFoldASCII(s string, b []byte) bool {
	if len(s) != len(b) {
		return false
	}
	for i := 0; i < len(s); i++ {
		x, y := s[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// HeaderValues returns the values of all fields called name in a raw
// header block, unfolded and decoded to UTF-8 (RFC 2047, with invalid
// UTF-8 replaced), e.g. for IMAP SEARCH HEADER.
func HeaderValues(header []byte, name string) []string {
	var vals []string
	forEachField(header, func(n, value, _ []byte) bool {
		if strings.EqualFold(string(n), name) {
			vals = append(vals, DecodeHeaderText(unfold(value)))
		}
		return true
	})
	return vals
}

// fill sets the MIME fields of p from the header.
func (h *header) fill(p *Part, digest bool) {
	switch {
	case h.has[fContentType]:
		typ, sub, params, ok := parseContentType(h.v[fContentType])
		if !ok {
			typ, sub = "text", "plain"
			if params["charset"] == "" {
				if params == nil {
					params = make(map[string]string, 1)
				}
				params["charset"] = "us-ascii"
			}
		}
		p.Type, p.Subtype, p.Params = typ, sub, params
	case digest:
		p.Type, p.Subtype = "message", "rfc822"
	default:
		p.Type, p.Subtype = "text", "plain"
		p.Params = map[string]string{"charset": "us-ascii"}
	}
	cs := p.Params["charset"]
	p.Encoding = "7BIT"
	if h.has[fContentTransferEncoding] {
		l := lexer{s: h.v[fContentTransferEncoding]}
		l.skipCFWS()
		if t := l.valueToken(); t != "" {
			p.Encoding = t
		}
	}
	p.ID = toUTF8(h.v[fContentID], cs)
	p.Description = toUTF8(h.v[fContentDescription], cs)
	p.Location = toUTF8(h.v[fContentLocation], cs)
	p.MD5 = toUTF8(h.v[fContentMD5], cs)
	if h.has[fContentDisposition] {
		l := lexer{s: h.v[fContentDisposition]}
		l.skipCFWS()
		p.Disposition = strings.ToLower(toUTF8(l.token(), ""))
		p.DispositionParams = l.params(cs)
	}
	if v := h.v[fContentLanguage]; v != "" {
		for tag := range strings.SplitSeq(v, ",") {
			l := lexer{s: tag}
			l.skipCFWS()
			if t := toUTF8(l.valueToken(), ""); t != "" {
				p.Language = append(p.Language, t)
			}
		}
	}
}

// envelope builds the envelope from the header; cs is the charset to try
// for raw 8-bit values.
func (h *header) envelope(cs string) *Envelope {
	env := &Envelope{}
	if h.has[fDate] {
		env.Date = parseDate(h.v[fDate])
	}
	env.Subject = decodeText(h.v[fSubject], cs)
	lists := [...]*[]Address{&env.From, &env.Sender, &env.ReplyTo, &env.To, &env.Cc, &env.Bcc}
	for i, l := range lists {
		if v := h.v[fFrom+i]; v != "" {
			*l = parseAddressList(toUTF8(v, cs))
		}
	}
	if v := h.v[fInReplyTo]; v != "" {
		env.InReplyTo = parseMsgIDs(toUTF8(v, cs))
	}
	if v := h.v[fMessageID]; v != "" {
		if ids := parseMsgIDs(toUTF8(v, cs)); len(ids) > 0 {
			env.MessageID = ids[0]
		}
	}
	return env
}

// parseMsgIDs extracts the msg-ids of an In-Reply-To or Message-ID field,
// without angle brackets. A value without angle brackets that is a single
// word containing "@" is taken as a msg-id as well.
func parseMsgIDs(v string) []string {
	var ids []string
	rest := v
	for {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i+1:], '>')
		if j < 0 {
			break
		}
		id := strings.Join(strings.Fields(rest[i+1:i+1+j]), "")
		if id != "" {
			ids = append(ids, id)
		}
		rest = rest[i+1+j+1:]
	}
	if ids == nil {
		if f := strings.Fields(v); len(f) == 1 && strings.Contains(f[0], "@") {
			ids = append(ids, strings.Trim(f[0], "<>"))
		}
	}
	return ids
}

// lexer is a lenient tokenizer for structured header values.
type lexer struct {
	s string
	i int
}

func (l *lexer) eof() bool { return l.i >= len(l.s) }

// skipCFWS skips white space and (nested) comments.
func (l *lexer) skipCFWS() {
	for l.i < len(l.s) {
		switch l.s[l.i] {
		case ' ', '\t', '\r', '\n':
			l.i++
		case '(':
			l.comment()
		default:
			return
		}
	}
}

// comment consumes a comment starting at '(' and returns its text.
func (l *lexer) comment() string {
	var b strings.Builder
	depth := 0
	for l.i < len(l.s) {
		c := l.s[l.i]
		l.i++
		switch c {
		case '(':
			if depth > 0 {
				b.WriteByte(c)
			}
			depth++
		case ')':
			depth--
			if depth == 0 {
				return b.String()
			}
			b.WriteByte(c)
		case '\\':
			if l.i < len(l.s) {
				b.WriteByte(l.s[l.i])
				l.i++
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// quoted consumes a quoted string starting at '"' and returns its
// unescaped contents. An unterminated string extends to the end.
func (l *lexer) quoted() string {
	l.i++ // opening quote
	start := l.i
	for l.i < len(l.s) {
		switch l.s[l.i] {
		case '"':
			v := l.s[start:l.i]
			l.i++
			return v
		case '\\':
			return l.quotedSlow(start)
		}
		l.i++
	}
	return l.s[start:]
}

func (l *lexer) quotedSlow(start int) string {
	b := []byte(l.s[start:l.i])
	for l.i < len(l.s) {
		c := l.s[l.i]
		l.i++
		switch c {
		case '"':
			return string(b)
		case '\\':
			if l.i < len(l.s) {
				b = append(b, l.s[l.i])
				l.i++
			}
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// isTSpecial reports RFC 2045 tspecials and characters that end a token.
func isTSpecial(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '@', ',', ';', ':', '\\', '"', '/', '[', ']', '?', '=':
		return true
	}
	return c <= ' ' || c == 0x7f
}

// token consumes an RFC 2045 token (8-bit bytes are accepted).
func (l *lexer) token() string {
	start := l.i
	for l.i < len(l.s) && !isTSpecial(l.s[l.i]) {
		l.i++
	}
	return l.s[start:l.i]
}

// valueToken consumes an unquoted parameter value: more lenient than a
// token, it ends only at white space, ';', '"' or '('.
func (l *lexer) valueToken() string {
	start := l.i
	for l.i < len(l.s) {
		c := l.s[l.i]
		if c == ';' || c == '"' || c == '(' || c <= ' ' || c == 0x7f {
			break
		}
		l.i++
	}
	return l.s[start:l.i]
}

// skipPast skips to just after the next ';' (outside quoted strings).
func (l *lexer) skipPast() {
	for l.i < len(l.s) {
		switch l.s[l.i] {
		case ';':
			l.i++
			return
		case '"':
			l.quoted()
		case '(':
			l.comment()
		default:
			l.i++
		}
	}
}

// parseContentType parses a Content-Type value. ok is false if the media
// type is not a valid type/subtype; the parameters are parsed anyway.
func parseContentType(v string) (typ, sub string, params map[string]string, ok bool) {
	l := lexer{s: v}
	l.skipCFWS()
	typ = l.token()
	l.skipCFWS()
	if !l.eof() && l.s[l.i] == '/' {
		l.i++
		l.skipCFWS()
		sub = l.token()
	}
	ok = typ != "" && sub != "" && isASCII(typ) && isASCII(sub)
	if !ok {
		// Skip whatever the garbage is up to the parameters.
		l.skipPast()
	}
	params = l.params("")
	return strings.ToLower(typ), strings.ToLower(sub), params, ok
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// rfc2231Seg is one segment of an RFC 2231 parameter value.
type rfc2231Seg struct {
	name    string // parameter name without the "*..." suffix
	n       int    // segment number; -1 for a non-continued "name*"
	encoded bool
	value   string
}

// maxParamSegments bounds RFC 2231 continuation numbers.
const maxParamSegments = 1000

// params parses a parameter list ("; a=b; c*=utf-8'en'%41"). Keys are lower
// cased; values are decoded (RFC 2231, then RFC 2047 except for
// "boundary"); raw 8-bit values are converted from cs, or else from the
// charset parameter itself, to UTF-8. It returns nil if there are no
// parameters.
func (l *lexer) params(cs string) map[string]string {
	var params map[string]string
	var segs []rfc2231Seg
	for {
		l.skipCFWS()
		if l.eof() {
			break
		}
		if l.s[l.i] == ';' {
			l.i++
			continue
		}
		name := l.token()
		if name == "" {
			l.i++ // a stray special character
			l.skipPast()
			continue
		}
		l.skipCFWS()
		if l.eof() || l.s[l.i] != '=' {
			l.skipPast()
			continue
		}
		l.i++
		l.skipCFWS()
		var value string
		if !l.eof() && l.s[l.i] == '"' {
			value = l.quoted()
		} else {
			value = l.valueToken()
		}
		name = strings.ToLower(name)
		if star := strings.IndexByte(name, '*'); star > 0 {
			if seg, ok := parseSegName(name, star); ok {
				seg.value = value
				segs = append(segs, seg)
				continue
			}
		}
		if params == nil {
			params = make(map[string]string, 2)
		}
		if _, dup := params[name]; !dup {
			params[name] = value
		}
	}
	if len(segs) > 0 {
		if params == nil {
			params = make(map[string]string, 2)
		}
		join2231(segs, params)
	}
	if len(params) == 0 {
		return nil
	}
	if cs == "" {
		cs = params["charset"]
	}
	for k, v := range params {
		if k == "boundary" {
			continue
		}
		v = toUTF8(v, cs)
		if strings.Contains(v, "=?") {
			v = DecodeHeaderText(v)
		}
		params[k] = v
	}
	return params
}

// parseSegName parses an RFC 2231 parameter name "name*", "name*N" or
// "name*N*"; star is the index of the first '*'.
func parseSegName(name string, star int) (rfc2231Seg, bool) {
	seg := rfc2231Seg{name: name[:star], n: -1}
	rest := name[star+1:]
	if rest == "" {
		seg.encoded = true
		return seg, true
	}
	if strings.HasSuffix(rest, "*") {
		seg.encoded = true
		rest = rest[:len(rest)-1]
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || n >= maxParamSegments || (len(rest) > 1 && rest[0] == '0') {
		return seg, false
	}
	seg.n = n
	return seg, true
}

// join2231 assembles RFC 2231 segments into params, overriding plain
// parameters of the same name.
func join2231(segs []rfc2231Seg, params map[string]string) {
	slices.SortStableFunc(segs, func(a, b rfc2231Seg) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return a.n - b.n
	})
	for i := 0; i < len(segs); {
		j := i
		for j < len(segs) && segs[j].name == segs[i].name {
			j++
		}
		group := segs[i:j]
		i = j
		name := group[0].name
		if group[0].n < 0 {
			// "name*=charset'lang'value" (if there are also numbered
			// segments, this one wins).
			group = group[:1]
		} else if group[0].n != 0 {
			continue
		}
		var charset string
		var buf []byte
		for k, seg := range group {
			if k > 0 && seg.n != group[k-1].n+1 {
				break // gap or duplicate: stop at the first one
			}
			v := seg.value
			if seg.encoded {
				if k == 0 {
					if a := strings.IndexByte(v, '\''); a >= 0 {
						if b := strings.IndexByte(v[a+1:], '\''); b >= 0 {
							charset = v[:a]
							v = v[a+1+b+1:]
						}
					}
				}
				buf = appendPercentDecoded(buf, v)
			} else {
				buf = append(buf, v...)
			}
		}
		params[name] = convertCharset(charset, buf)
	}
}

func appendPercentDecoded(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) {
			if h, ok := unhex2(s[i+1], s[i+2]); ok {
				buf = append(buf, h)
				i += 2
				continue
			}
		}
		buf = append(buf, c)
	}
	return buf
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func unhex2(a, b byte) (byte, bool) {
	x, ok1 := unhex(a)
	y, ok2 := unhex(b)
	return x<<4 | y, ok1 && ok2
}
