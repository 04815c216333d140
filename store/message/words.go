package message

import (
	"bytes"
	"encoding/base64"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// DecodeHeaderText decodes the RFC 2047 encoded-words in an unstructured
// header value to UTF-8, best-effort: any charset known to
// github.com/emersion/go-message/charset is converted; white space between
// adjacent encoded-words is removed and adjacent words in the same charset
// are joined before conversion (so characters split across words survive);
// malformed words are left as they are; words in unknown charsets are
// decoded with invalid UTF-8 replaced by U+FFFD. The result is always valid
// UTF-8.
func DecodeHeaderText(s string) string {
	if !strings.Contains(s, "=?") {
		return validUTF8(s)
	}
	var out strings.Builder
	var run []byte   // decoded bytes of the current run of words
	var runCS string // their charset
	flush := func() {
		if runCS != "" {
			out.WriteString(convertCharset(runCS, run))
			run, runCS = run[:0], ""
		}
	}
	pos := 0           // start of text not yet written
	afterWord := false // s[pos:] follows an encoded-word
	for search := 0; ; {
		k := strings.Index(s[search:], "=?")
		if k < 0 {
			break
		}
		k += search
		cs, dec, end, ok := parseWord(s, k)
		if !ok {
			search = k + 2
			continue
		}
		between := s[pos:k]
		if !afterWord || strings.Trim(between, " \t\r\n") != "" {
			flush()
			out.WriteString(validUTF8(between))
		}
		if runCS != "" && !strings.EqualFold(runCS, cs) {
			flush()
		}
		runCS = cs
		run = append(run, dec...)
		afterWord = true
		pos, search = end, end
	}
	flush()
	out.WriteString(validUTF8(s[pos:]))
	return out.String()
}

// parseWord parses an encoded-word "=?charset?e?text?=" at s[k:] and
// returns its charset (without RFC 2231 language), the decoded bytes and the
// index just after it.
//
// The encoded text ends at its first '?' (RFC 2047 does not allow '?' in
// it), which keeps decoding linear: a failed attempt never scans past the
// next "=?". As a leniency, a stray '?' followed by "?=" within a few
// characters is accepted as part of the text.
func parseWord(s string, k int) (cs string, dec []byte, end int, ok bool) {
	rest := s[k+2:]
	q := strings.IndexByte(rest[:min(len(rest), 66)], '?')
	if q <= 0 || len(rest) < q+3 || rest[q+2] != '?' {
		return "", nil, 0, false
	}
	cs = rest[:q]
	if strings.ContainsAny(cs, " \t\r\n=") {
		return "", nil, 0, false
	}
	if star := strings.IndexByte(cs, '*'); star >= 0 {
		cs = cs[:star]
		if cs == "" {
			return "", nil, 0, false
		}
	}
	enc := rest[q+1]
	text := rest[q+3:]
	e := strings.IndexByte(text, '?')
	if e < 0 {
		return "", nil, 0, false
	}
	if e+1 >= len(text) || text[e+1] != '=' {
		f := strings.Index(text[e+1:min(len(text), e+1+16)], "?=")
		if f < 0 || strings.ContainsAny(text[:e+1+f], " \t\r\n") || strings.Contains(text[:e+1+f], "=?") {
			return "", nil, 0, false
		}
		e += 1 + f
	}
	text = text[:e]
	end = k + 2 + q + 3 + e + 2
	switch enc {
	case 'B', 'b':
		dec, ok = decodeB(text)
	case 'Q', 'q':
		dec, ok = decodeQ(text), true
	}
	return cs, dec, end, ok
}

func decodeB(text string) ([]byte, bool) {
	text = strings.TrimRight(text, "=")
	if strings.ContainsAny(text, " \t\r\n") {
		text = strings.Join(strings.Fields(text), "")
	}
	if len(text)%4 == 1 {
		text = text[:len(text)-1]
	}
	dec, err := base64.RawStdEncoding.DecodeString(text)
	if err != nil {
		return nil, false
	}
	return dec, true
}

func decodeQ(text string) []byte {
	dec := make([]byte, 0, len(text))
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '_':
			c = ' '
		case c == '=' && i+2 < len(text):
			if h, ok := unhex2(text[i+1], text[i+2]); ok {
				c = h
				i += 2
			}
		}
		dec = append(dec, c)
	}
	return dec
}

// decodeText decodes an unstructured header value: raw 8-bit text is
// converted from cs (if not valid UTF-8), then RFC 2047 words are decoded.
func decodeText(s, cs string) string {
	return DecodeHeaderText(toUTF8(s, cs))
}

// toUTF8 returns s if it is valid UTF-8 (RFC 6532), else s converted from
// charset cs if that is a known charset other than UTF-8/ASCII, else from
// Windows-1252 (the most common charset of raw 8-bit headers, and a
// superset of ISO-8859-1).
func toUTF8(s, cs string) string {
	if utf8.ValidString(s) {
		return s
	}
	if isUTF8Compatible(cs) {
		cs = "windows-1252"
	}
	if r, err := charset.Reader(cs, strings.NewReader(s)); err == nil {
		if out, err := io.ReadAll(r); err == nil {
			return validUTF8(string(out))
		}
	}
	return convertCharset("windows-1252", []byte(s))
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// isUTF8Compatible reports whether text in charset cs can be taken as
// UTF-8 as is.
func isUTF8Compatible(cs string) bool {
	switch strings.ToLower(strings.TrimSpace(cs)) {
	case "", "utf-8", "utf8", "us-ascii", "ascii", "unknown-8bit", "x-unknown":
		return true
	}
	return false
}

// convertCharset converts b from charset cs to valid UTF-8, best-effort.
func convertCharset(cs string, b []byte) string {
	if !isUTF8Compatible(cs) {
		if r, err := charset.Reader(cs, bytes.NewReader(b)); err == nil {
			if out, err := io.ReadAll(r); err == nil || len(out) > 0 {
				return validUTF8(string(out))
			}
		}
	}
	return validUTF8(string(b))
}
