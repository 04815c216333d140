package portability

import (
	"encoding/base64"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// IMAP's modified UTF-7 (RFC 3501 section 5.1.3), which Dovecot and
// Courier use for Maildir++ folder names: printable ASCII but '&' stands for
// itself, '&' is "&-", anything else is "&" + base64 of UTF-16BE with ','
// for '/' + "-".

var mutf7 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// encodeMUTF7 encodes s.
func encodeMUTF7(s string) string {
	var b strings.Builder
	var run []rune
	flush := func() {
		if len(run) == 0 {
			return
		}
		u := utf16.Encode(run)
		raw := make([]byte, 0, 2*len(u))
		for _, c := range u {
			raw = append(raw, byte(c>>8), byte(c))
		}
		b.WriteByte('&')
		b.WriteString(mutf7.EncodeToString(raw))
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range s {
		switch {
		case r == '&':
			flush()
			b.WriteString("&-")
		case r >= 0x20 && r <= 0x7e:
			flush()
			b.WriteRune(r)
		default:
			run = append(run, r)
		}
	}
	flush()
	return b.String()
}

// decodeMUTF7 decodes s. A name that is not valid modified UTF-7 (some
// servers store raw UTF-8) is returned as it is.
func decodeMUTF7(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return s // already UTF-8
		}
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '&' {
			b.WriteByte(s[i])
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return s
		}
		enc := s[i+1 : i+1+end]
		i += end + 1
		if enc == "" {
			b.WriteByte('&')
			continue
		}
		raw, err := mutf7.DecodeString(enc)
		if err != nil || len(raw)%2 != 0 {
			return s
		}
		u := make([]uint16, len(raw)/2)
		for k := range u {
			u[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
		}
		for _, r := range utf16.Decode(u) {
			if r == utf8.RuneError {
				return s
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}
