package message

import "strings"

// addrToken is a token of an address list. kind is 'a' (atom, dots
// included), 'q' (quoted string), 'c' (comment), 'd' (domain literal), one
// of the specials < > @ : ; , or '?' (other special), or 0 at the end.
type addrToken struct {
	kind byte
	text string
}

type addrParser struct {
	lexer
}

// parseAddressList parses an address list leniently. Groups produce a
// start marker, the members and an end marker (see Address); addresses
// that cannot be made sense of are skipped.
func parseAddressList(s string) []Address {
	ap := addrParser{lexer{s: s}}
	var out []Address
	ap.list(&out, false)
	return out
}

func isAtomChar(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '[', ']', ':', ';', '@', '\\', ',', '"', ' ', '\t', '\r', '\n':
		return false
	}
	return c >= 0x20 && c != 0x7f
}

func (ap *addrParser) next() addrToken {
	s := ap.s
	for ap.i < len(s) && (s[ap.i] == ' ' || s[ap.i] == '\t' || s[ap.i] == '\r' || s[ap.i] == '\n') {
		ap.i++
	}
	if ap.i >= len(s) {
		return addrToken{}
	}
	switch c := s[ap.i]; c {
	case '(':
		return addrToken{'c', ap.comment()}
	case '"':
		return addrToken{'q', ap.quoted()}
	case '[':
		start := ap.i
		for ap.i++; ap.i < len(s) && s[ap.i] != ']'; ap.i++ {
			if s[ap.i] == '\\' {
				ap.i++
			}
		}
		ap.i = min(ap.i+1, len(s))
		return addrToken{'d', s[start:ap.i]}
	case '<', '>', '@', ':', ';', ',':
		ap.i++
		return addrToken{kind: c}
	default:
		if !isAtomChar(c) {
			ap.i++
			return addrToken{kind: '?'}
		}
	}
	start := ap.i
	for ap.i < len(s) && isAtomChar(s[ap.i]) {
		ap.i++
	}
	return addrToken{'a', s[start:ap.i]}
}

// peekComment consumes and returns a comment if one comes next.
func (ap *addrParser) peekComment() (string, bool) {
	save := ap.i
	if t := ap.next(); t.kind == 'c' {
		return t.text, true
	}
	ap.i = save
	return "", false
}

// list parses addresses up to the end, or up to ';' inside a group.
func (ap *addrParser) list(out *[]Address, inGroup bool) {
	var words []addrToken
	var comment string
	for {
		t := ap.next()
		switch t.kind {
		case 0:
			ap.bare(out, words)
			return
		case 'a', 'q', 'd':
			words = append(words, t)
		case 'c':
			comment = t.text
		case '<':
			a := ap.angle()
			a.Name = phrase(words)
			if a.Name == "" && comment != "" {
				a.Name = DecodeHeaderText(strings.TrimSpace(comment))
			}
			appendAddr(out, a)
			words, comment = nil, ""
		case '@':
			a := Address{Mailbox: localPart(words), Host: ap.domain()}
			if c, ok := ap.peekComment(); ok {
				a.Name = DecodeHeaderText(strings.TrimSpace(c))
			}
			appendAddr(out, a)
			words, comment = nil, ""
		case ':':
			if inGroup {
				// Nested groups are not allowed: drop the name.
				words, comment = nil, ""
				continue
			}
			name := phrase(words)
			if name == "" {
				name = MissingMailbox
			}
			*out = append(*out, Address{Mailbox: name})
			ap.list(out, true)
			*out = append(*out, Address{})
			words, comment = nil, ""
		case ';':
			ap.bare(out, words)
			if inGroup {
				return
			}
			words, comment = nil, ""
		case ',':
			ap.bare(out, words)
			words, comment = nil, ""
		}
	}
}

// angle parses the rest of an angle-addr after '<'.
func (ap *addrParser) angle() Address {
	var local []addrToken
	var a Address
	for {
		save := ap.i
		t := ap.next()
		switch t.kind {
		case 0, '>':
			a.Mailbox = localPart(local)
			return a
		case 'a', 'q':
			local = append(local, t)
		case '@':
			if len(local) == 0 && a.Host == "" {
				// "<@domain>" (no local part) or an obsolete route
				// "<@a,@b:user@domain>".
				d := ap.domain()
				for {
					t = ap.next()
					if t.kind == ':' || t.kind == 0 || t.kind == '>' {
						break
					}
				}
				if t.kind != ':' {
					a.Host = d
					return a
				}
				continue
			}
			a.Host = ap.domain()
		case ',', ';', '<':
			// Unterminated angle-addr: leave the separator.
			ap.i = save
			a.Mailbox = localPart(local)
			return a
		}
	}
}

// domain parses a domain after '@'.
func (ap *addrParser) domain() string {
	var b strings.Builder
	for {
		save := ap.i
		t := ap.next()
		if t.kind != 'a' && t.kind != 'd' {
			ap.i = save
			break
		}
		if b.Len() > 0 && !strings.HasSuffix(b.String(), ".") && !strings.HasPrefix(t.text, ".") {
			ap.i = save // another word: probably a missing comma
			break
		}
		b.WriteString(t.text)
	}
	return b.String()
}

// bare handles words not followed by an address: "undisclosed-recipients"
// or a local part without a domain.
func (ap *addrParser) bare(out *[]Address, words []addrToken) {
	if len(words) > 0 {
		appendAddr(out, Address{Mailbox: localPart(words)})
	}
}

func appendAddr(out *[]Address, a Address) {
	if a.Mailbox == "" && a.Host == "" && a.Name == "" {
		return
	}
	if a.Mailbox == "" {
		a.Mailbox = MissingMailbox
	}
	if a.Host == "" {
		a.Host = MissingDomain
	}
	*out = append(*out, a)
}

// phrase joins display-name words and decodes them.
func phrase(words []addrToken) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return DecodeHeaderText(words[0].text)
	}
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w.text)
	}
	return DecodeHeaderText(b.String())
}

// localPart joins local-part words; quoted strings that need it keep their
// quotes.
func localPart(words []addrToken) string {
	if len(words) == 1 && words[0].kind == 'a' {
		return validUTF8(words[0].text)
	}
	var b strings.Builder
	for _, w := range words {
		if w.kind == 'q' && needsQuoting(w.text) {
			b.WriteByte('"')
			for i := 0; i < len(w.text); i++ {
				if c := w.text[i]; c == '"' || c == '\\' {
					b.WriteByte('\\')
				}
				b.WriteByte(w.text[i])
			}
			b.WriteByte('"')
		} else {
			b.WriteString(w.text)
		}
	}
	return validUTF8(b.String())
}

func needsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); i++ {
		if !isAtomChar(s[i]) {
			return true
		}
	}
	return false
}
