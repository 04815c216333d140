package message

import (
	"bufio"
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"
)

// Well-formed messages, on which our structure must agree with what
// go-imap's reference implementation (built on go-message's parser, which
// reads whole bodies) derives.
var compatFiles = []string{
	"simple.eml", "alternative.eml", "mixed-attachment.eml", "nested-rfc822.eml",
	"latin1.eml", "sjis.eml", "rfc2231.eml", "bare-lf.eml",
}

// Known deviations from go-message, where we do better:
//   - go-message (via mime.ParseMediaType) cannot decode RFC 2231
//     parameters in charsets other than UTF-8 and drops those segments;
//   - it does not decode encoded-words inside quoted display names;
//   - its BINARY converts text charsets to UTF-8 (RFC 3516 only undoes the
//     transfer encoding);
//   - it re-serializes headers with CRLF line breaks;
//   - a part without Content-Type gets no parameters, where we give it the
//     RFC 2045 default (charset=us-ascii).
var knownDiffs = map[string]bool{
	"bare-lf.eml root.2 params":      true,
	"rfc2231.eml root.2 disposition": true,
	"rfc2231.eml root.2 params":      true,
	"latin1.eml To":                  true,
}

func sameParams(a, b map[string]string) bool {
	return len(a) == 0 && len(b) == 0 || reflect.DeepEqual(a, b)
}

// compareShape compares types, sizes, line counts and nesting with a
// go-imap BODYSTRUCTURE.
func compareShape(t *testing.T, file, where string, p *Part, bs imap.BodyStructure) {
	t.Helper()
	switch bs := bs.(type) {
	case *imap.BodyStructureMultiPart:
		if !p.IsMultipart() || p.Subtype != strings.ToLower(bs.Subtype) || len(p.Children) != len(bs.Children) {
			t.Errorf("%s: %s with %d children, go-message: multipart/%s with %d", where, p.MediaType(), len(p.Children), bs.Subtype, len(bs.Children))
			return
		}
		for i := range bs.Children {
			compareShape(t, file, where+"."+string(rune('1'+i)), p.Children[i], bs.Children[i])
		}
	case *imap.BodyStructureSinglePart:
		if p.MediaType() != bs.MediaType() || p.Size() != int64(bs.Size) {
			t.Errorf("%s: %s size %d, go-message: %s size %d", where, p.MediaType(), p.Size(), bs.MediaType(), bs.Size)
		}
		if p.ID != bs.ID || p.Description != bs.Description || !strings.EqualFold(p.Encoding, bs.Encoding) && bs.Encoding != "" {
			t.Errorf("%s: id/description/encoding %q %q %q, go-message %q %q %q", where, p.ID, p.Description, p.Encoding, bs.ID, bs.Description, bs.Encoding)
		}
		if bs.Text != nil && bs.Text.NumLines != p.Lines {
			t.Errorf("%s: %d lines, go-message %d", where, p.Lines, bs.Text.NumLines)
		}
		if !sameParams(bs.Params, p.Params) && !knownDiffs[file+" "+where+" params"] {
			t.Errorf("%s: params %v, go-message %v", where, p.Params, bs.Params)
		}
		if d := bs.Disposition(); !knownDiffs[file+" "+where+" disposition"] && d != nil && (d.Value != p.Disposition || !sameParams(d.Params, p.DispositionParams)) {
			t.Errorf("%s: disposition %q %v, go-message %q %v", where, p.Disposition, p.DispositionParams, d.Value, d.Params)
		}
		if m := bs.MessageRFC822; m != nil {
			if !p.IsMessage() || m.NumLines != p.Lines {
				t.Errorf("%s: not an embedded message or lines %d != %d", where, p.Lines, m.NumLines)
				return
			}
			if m.Envelope.Subject != p.Envelope.Subject || m.Envelope.MessageID != p.Envelope.MessageID {
				t.Errorf("%s: embedded envelope differs", where)
			}
			// The embedded root: a single-part body is numbered 1.
			compareShape(t, file, where+"[msg]", p.Children[0], m.BodyStructure)
		}
	}
}

func TestCompatGoMessage(t *testing.T) {
	for _, file := range compatFiles {
		t.Run(file, func(t *testing.T) {
			msg := readTestdata(t, file)
			s := mustParse(t, msg)
			compareShape(t, file, "root", s.Root, imapserver.ExtractBodyStructure(bytes.NewReader(msg)))

			// Every BODY[section] and BINARY[section] agrees with
			// go-imap's extraction.
			s.Walk(func(path []int, p *Part) bool {
				if len(path) == 0 {
					return true
				}
				want := imapserver.ExtractBodySection(bytes.NewReader(msg), &imap.FetchItemBodySection{Part: path})
				if got := msg[p.BodyStart:p.End]; !bytes.Equal(got, want) {
					t.Errorf("BODY[%v] = %q\ngo-imap: %q", path, got, want)
				}
				if !p.IsMultipart() && !p.IsMessage() && isUTF8Compatible(p.Params["charset"]) {
					want := imapserver.ExtractBinarySection(bytes.NewReader(msg), &imap.FetchItemBinarySection{Part: path})
					got, _ := io.ReadAll(DecodeReader(p, bytes.NewReader(msg[p.BodyStart:p.End])))
					if !bytes.Equal(got, want) {
						t.Errorf("BINARY[%v] = %q\ngo-imap: %q", path, got, want)
					}
				}
				if bytes.Contains(msg, []byte("\r\n")) {
					// go-imap re-serializes headers with CRLF.
					for _, spec := range []imap.PartSpecifier{imap.PartSpecifierMIME, imap.PartSpecifierHeader, imap.PartSpecifierText} {
						want := imapserver.ExtractBodySection(bytes.NewReader(msg), &imap.FetchItemBodySection{Part: path, Specifier: spec})
						start, end, ok := s.Section(path, string(spec))
						if !ok {
							if spec == imap.PartSpecifierMIME || p.IsMessage() {
								t.Errorf("BODY[%v.%s] missing", path, spec)
							}
							continue
						}
						if got := msg[start:end]; !bytes.Equal(got, want) {
							t.Errorf("BODY[%v.%s] = %q\ngo-imap: %q", path, spec, got, want)
						}
					}
				}
				return true
			})
			for _, spec := range []imap.PartSpecifier{imap.PartSpecifierNone, imap.PartSpecifierHeader, imap.PartSpecifierText} {
				want := imapserver.ExtractBodySection(bytes.NewReader(msg), &imap.FetchItemBodySection{Specifier: spec})
				start, end, _ := s.Section(nil, string(spec))
				if got := msg[start:end]; !bytes.Equal(got, want) && (spec == imap.PartSpecifierText || bytes.Contains(msg, []byte("\r\n"))) {
					t.Errorf("BODY[%s] = %q\ngo-imap: %q", spec, got, want)
				}
			}

			// The envelope agrees with go-imap's (which decodes each
			// encoded-word on its own, so skip the split Shift_JIS
			// subject).
			env := imapserver.ExtractEnvelope(mustReadHeader(t, msg))
			if file != "sjis.eml" && env.Subject != s.Envelope.Subject {
				t.Errorf("subject %q, go-imap %q", s.Envelope.Subject, env.Subject)
			}
			if !env.Date.Equal(s.Envelope.Date) || env.MessageID != s.Envelope.MessageID || !reflect.DeepEqual(env.InReplyTo, s.Envelope.InReplyTo) {
				t.Errorf("date/ids %v %q %q, go-imap %v %q %q", s.Envelope.Date, s.Envelope.MessageID, s.Envelope.InReplyTo, env.Date, env.MessageID, env.InReplyTo)
			}
			lists := []struct {
				name       string
				theirs, us []imap.Address
			}{
				{"From", env.From, toIMAP(s.Envelope.From)}, {"To", env.To, toIMAP(s.Envelope.To)}, {"Cc", env.Cc, toIMAP(s.Envelope.Cc)},
			}
			for _, l := range lists {
				if !reflect.DeepEqual(l.theirs, l.us) && !knownDiffs[file+" "+l.name] {
					t.Errorf("%s %+v, go-imap %+v", l.name, l.us, l.theirs)
				}
			}
		})
	}
}

func toIMAP(l []Address) []imap.Address {
	var out []imap.Address
	for _, a := range l {
		out = append(out, imap.Address(a))
	}
	return out
}

func mustReadHeader(t *testing.T, msg []byte) textproto.Header {
	t.Helper()
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(msg)))
	if err != nil {
		t.Fatal(err)
	}
	return h
}
