package message

import (
	"encoding/binary"
	"errors"
	"slices"
)

// Encoding (all integers are encoding/binary uvarints unless noted):
//
//	structure = version:byte size headerSize envelope nparts part{nparts}
//	envelope  = flags [date] [subject] count{lists present} address{sum}
//	            [inReplyToCount str{count}] [messageID]
//	date      = unix:varint offsetMinutes:varint
//	address   = name:str mailbox:str host:str
//	part      = type:str subtype:str flags [params] [id] [description]
//	            [encoding] [disposition] [dispositionParams] [language]
//	            [location] [md5] headerStart bodyStart-headerStart
//	            end-bodyStart lines [envelope] [childCount part{childCount}]
//	params    = count (key:str value:str){count}   (keys sorted)
//	str       = x: x&1 == 0: x>>1 bytes follow; x&1 == 1: dict[x>>1]
//
// Parts are in depth-first pre-order. Optional fields are present if their
// flag bit is set. dict is fixed for a version: only append to it together
// with a version bump.
const version = 1

// dict holds strings frequent in structures, encoded as one or two bytes.
var dict = [...]string{
	// 0-63: one byte.
	"text", "plain", "html", "multipart", "mixed", "alternative", "related",
	"message", "rfc822", "application", "octet-stream", "pdf", "image", "jpeg",
	"png", "charset", "us-ascii", "utf-8", "UTF-8", "iso-8859-1", "ISO-8859-1",
	"boundary", "name", "filename", "7bit", "7BIT", "8bit", "8BIT", "base64",
	"BASE64", "quoted-printable", "QUOTED-PRINTABLE", "binary", "inline",
	"attachment", "format", "flowed", "delsp", "yes", "no", "signed",
	"pgp-signature", "protocol", "application/pgp-signature", "micalg",
	"windows-1252", "Windows-1252", "iso-8859-15", "ISO-8859-15", "gif",
	"report", "report-type", "delivery-status", "calendar", "method", "digest",
	"Quoted-Printable", "Base64", "windows-1250", "size", "creation-date",
	"modification-date", "type", "start",
	// 64-: two bytes.
	"encrypted", "pgp-encrypted", "application/pgp-encrypted", "pkcs7-signature",
	"x-pkcs7-signature", "application/pkcs7-signature",
	"application/x-pkcs7-signature", "pkcs7-mime", "x-pkcs7-mime", "smime.p7s",
	"smime.p7m", "signature.asc", "global", "disposition-notification",
	"rfc822-headers", "partial", "external-body", "enriched", "ms-tnef", "zip",
	"msword", "vnd.ms-excel", "json", "xml", "ics", "svg+xml", "audio", "video",
	"vnd.openxmlformats-officedocument.wordprocessingml.document",
	"vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"vnd.openxmlformats-officedocument.presentationml.presentation",
	"pgp-sha256", "pgp-sha512", "pgp-sha1", "sha-256", "sha1", "reply-type",
	"original", "REQUEST", "REPLY", "CANCEL", "PUBLISH", "fixed", "iso-2022-jp",
	"ISO-2022-JP", "shift_jis", "Shift_JIS", "gb2312", "GB2312", "big5", "Big5",
	"koi8-r", "KOI8-R", "euc-kr", "EUC-KR", "utf-16", "windows-1251",
	"iso-8859-2", "ISO-8859-2", "en", "en-US", "de", "de-DE", "fr", "fr-FR",
	MissingMailbox, MissingDomain, "undisclosed-recipients",
}

var dictIndex = func() map[string]uint64 {
	m := make(map[string]uint64, len(dict))
	for i, s := range dict {
		if _, dup := m[s]; !dup {
			m[s] = uint64(i)
		}
	}
	return m
}()

// Part flags.
const (
	pfParams = 1 << iota
	pfID
	pfDescription
	pfEncoding
	pfDisposition
	pfDispositionParams
	pfLanguage
	pfLocation
	pfMD5
	pfEnvelope
	pfChildren
	pfAll = 1<<iota - 1
)

// Envelope flags; the six address lists use bits efFrom<<0 .. efFrom<<5.
const (
	efDate = 1 << iota
	efSubject
	efInReplyTo
	efMessageID
	efFrom
	efAll = 1<<(iota+5) - 1
)

// Limits enforced by Unmarshal (Parse output always satisfies them).
const maxDecodeDepth = 2*MaxDepth + 4

// Marshal encodes s compactly. Unmarshal(s.Marshal()) returns a structure
// equal to s, except that empty maps and slices come back as nil and dates
// keep only their Unix second and minute-granular zone offset. Structures
// not produced by Parse must satisfy its invariants (ordered offsets,
// children within parents, at most MaxParts parts nested at most
// 2*MaxDepth+4 deep, non-negative Lines) or Unmarshal rejects the result.
func (s *Structure) Marshal() []byte {
	e := encoder{b: make([]byte, 0, 256)}
	e.b = append(e.b, version)
	e.uvarint(uint64(s.Size))
	e.uvarint(uint64(s.HeaderSize))
	e.envelope(&s.Envelope)
	n := 0
	if s.Root != nil {
		n = countParts(s.Root)
	}
	e.uvarint(uint64(n))
	if s.Root != nil {
		e.part(s.Root)
	}
	return e.b
}

func countParts(p *Part) int {
	n := 1
	for _, c := range p.Children {
		n += countParts(c)
	}
	return n
}

type encoder struct{ b []byte }

func (e *encoder) uvarint(x uint64) { e.b = binary.AppendUvarint(e.b, x) }
func (e *encoder) varint(x int64)   { e.b = binary.AppendVarint(e.b, x) }
func (e *encoder) offset(x int64)   { e.uvarint(uint64(max(x, 0))) }

func (e *encoder) str(s string) {
	if i, ok := dictIndex[s]; ok {
		e.uvarint(i<<1 | 1)
		return
	}
	e.uvarint(uint64(len(s)) << 1)
	e.b = append(e.b, s...)
}

func (e *encoder) params(m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.uvarint(uint64(len(keys)))
	for _, k := range keys {
		e.str(k)
		e.str(m[k])
	}
}

func (e *encoder) envelope(env *Envelope) {
	lists := env.lists()
	var flags uint64
	if !env.Date.IsZero() {
		flags |= efDate
	}
	if env.Subject != "" {
		flags |= efSubject
	}
	if len(env.InReplyTo) > 0 {
		flags |= efInReplyTo
	}
	if env.MessageID != "" {
		flags |= efMessageID
	}
	for i, l := range lists {
		if len(*l) > 0 {
			flags |= efFrom << i
		}
	}
	e.uvarint(flags)
	if flags&efDate != 0 {
		_, off := env.Date.Zone()
		e.varint(env.Date.Unix())
		e.varint(int64(off / 60))
	}
	if flags&efSubject != 0 {
		e.str(env.Subject)
	}
	for _, l := range lists {
		if len(*l) > 0 {
			e.uvarint(uint64(len(*l)))
		}
	}
	for _, l := range lists {
		for _, a := range *l {
			e.str(a.Name)
			e.str(a.Mailbox)
			e.str(a.Host)
		}
	}
	if flags&efInReplyTo != 0 {
		e.uvarint(uint64(len(env.InReplyTo)))
		for _, id := range env.InReplyTo {
			e.str(id)
		}
	}
	if flags&efMessageID != 0 {
		e.str(env.MessageID)
	}
}

func (env *Envelope) lists() [6]*[]Address {
	return [6]*[]Address{&env.From, &env.Sender, &env.ReplyTo, &env.To, &env.Cc, &env.Bcc}
}

func (e *encoder) part(p *Part) {
	e.str(p.Type)
	e.str(p.Subtype)
	var flags uint64
	if len(p.Params) > 0 {
		flags |= pfParams
	}
	if p.ID != "" {
		flags |= pfID
	}
	if p.Description != "" {
		flags |= pfDescription
	}
	if p.Encoding != "7BIT" {
		flags |= pfEncoding
	}
	if p.Disposition != "" {
		flags |= pfDisposition
	}
	if len(p.DispositionParams) > 0 {
		flags |= pfDispositionParams
	}
	if len(p.Language) > 0 {
		flags |= pfLanguage
	}
	if p.Location != "" {
		flags |= pfLocation
	}
	if p.MD5 != "" {
		flags |= pfMD5
	}
	if p.Envelope != nil {
		flags |= pfEnvelope
	}
	if len(p.Children) > 0 {
		flags |= pfChildren
	}
	e.uvarint(flags)
	if flags&pfParams != 0 {
		e.params(p.Params)
	}
	if flags&pfID != 0 {
		e.str(p.ID)
	}
	if flags&pfDescription != 0 {
		e.str(p.Description)
	}
	if flags&pfEncoding != 0 {
		e.str(p.Encoding)
	}
	if flags&pfDisposition != 0 {
		e.str(p.Disposition)
	}
	if flags&pfDispositionParams != 0 {
		e.params(p.DispositionParams)
	}
	if flags&pfLanguage != 0 {
		e.uvarint(uint64(len(p.Language)))
		for _, l := range p.Language {
			e.str(l)
		}
	}
	if flags&pfLocation != 0 {
		e.str(p.Location)
	}
	if flags&pfMD5 != 0 {
		e.str(p.MD5)
	}
	e.offset(p.HeaderStart)
	e.offset(p.BodyStart - p.HeaderStart)
	e.offset(p.End - p.BodyStart)
	e.offset(p.Lines)
	if flags&pfEnvelope != 0 {
		e.envelope(p.Envelope)
	}
	if flags&pfChildren != 0 {
		e.uvarint(uint64(len(p.Children)))
		for _, c := range p.Children {
			e.part(c)
		}
	}
}

// ErrCorrupt is returned by Unmarshal for data that is not a valid
// encoding.
var ErrCorrupt = errors.New("message: corrupt structure encoding")

// ErrVersion is returned by Unmarshal for data of an unknown version.
var ErrVersion = errors.New("message: unknown structure encoding version")

// Unmarshal decodes a Structure encoded by Marshal. It validates the
// encoding and the structure's invariants (offsets ordered and within the
// message, children within their parents) and returns ErrCorrupt or
// ErrVersion for invalid data. The returned strings share one allocation.
func Unmarshal(b []byte) (*Structure, error) {
	var d decoder
	s := &Structure{}
	if err := d.head(b, s); err != nil {
		return nil, err
	}
	n := d.count(MaxParts)
	if d.err == nil && n > 0 {
		d.parts = make([]Part, n)
		d.ptrs = make([]*Part, n-1)
		s.Root = d.part(0, 0, s.Size)
		if d.next != n {
			d.fail()
		}
	}
	if d.err == nil && d.i != len(d.b) {
		d.fail()
	}
	if d.err != nil {
		return nil, d.err
	}
	return s, nil
}

// UnmarshalEnvelope decodes only the envelope and size of a Structure
// encoded by Marshal, which is cheaper than Unmarshal. It does not
// validate the rest of the data.
func UnmarshalEnvelope(b []byte) (env Envelope, size int64, err error) {
	var d decoder
	var s Structure
	if err := d.head(b, &s); err != nil {
		return Envelope{}, 0, err
	}
	return s.Envelope, s.Size, nil
}

// head decodes the version, sizes and envelope into s.
func (d *decoder) head(b []byte, s *Structure) error {
	if len(b) == 0 {
		return ErrCorrupt
	}
	if b[0] != version {
		return ErrVersion
	}
	*d = decoder{b: b, s: string(b), i: 1}
	s.Size = d.offset(1 << 62)
	s.HeaderSize = d.offset(s.Size)
	d.envelope(&s.Envelope)
	return d.err
}

type decoder struct {
	b     []byte
	s     string // b as a string, to slice strings from
	i     int
	err   error
	parts []Part
	ptrs  []*Part
	next  int // next unused entry of parts
	nptr  int // next unused entry of ptrs
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = ErrCorrupt
	}
	d.i = len(d.b)
}

func (d *decoder) uvarint() uint64 {
	if d.i < len(d.b) && d.b[d.i] < 0x80 {
		x := d.b[d.i]
		d.i++
		return uint64(x)
	}
	x, n := binary.Uvarint(d.b[d.i:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.i += n
	return x
}

func (d *decoder) varint() int64 {
	x, n := binary.Varint(d.b[d.i:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.i += n
	return x
}

// offset decodes an offset or size, which must not exceed limit.
func (d *decoder) offset(limit int64) int64 {
	x := d.uvarint()
	if x > uint64(limit) {
		d.fail()
		return 0
	}
	return int64(x)
}

// count decodes a number of elements, each taking at least one byte, that
// must not exceed limit.
func (d *decoder) count(limit int) int {
	x := d.uvarint()
	if x > uint64(limit) || x > uint64(len(d.b)-d.i) {
		d.fail()
		return 0
	}
	return int(x)
}

func (d *decoder) str() string {
	x := d.uvarint()
	if x&1 == 1 {
		if x>>1 >= uint64(len(dict)) {
			d.fail()
			return ""
		}
		return dict[x>>1]
	}
	n := x >> 1
	if n > uint64(len(d.b)-d.i) {
		d.fail()
		return ""
	}
	s := d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return s
}

func (d *decoder) params() map[string]string {
	n := d.count((len(d.b) - d.i) / 2)
	if n == 0 {
		d.fail() // the flag is only set for a non-empty map
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := d.str()
		m[k] = d.str()
	}
	if len(m) != n {
		d.fail() // duplicate key
	}
	return m
}

func (d *decoder) envelope(env *Envelope) {
	flags := d.uvarint()
	if flags&^efAll != 0 {
		d.fail()
		return
	}
	if flags&efDate != 0 {
		unix, off := d.varint(), d.varint()
		// Years 0001 to 9999, excluding the zero time (never encoded).
		if unix <= minUnix || unix > maxUnix || off < -maxZoneMinutes || off > maxZoneMinutes {
			d.fail()
			return
		}
		env.Date = makeDate(unix, int(off))
	}
	if flags&efSubject != 0 {
		env.Subject = d.str()
	}
	lists := env.lists()
	var counts [6]int
	total := 0
	for i := range lists {
		if flags&(efFrom<<i) != 0 {
			counts[i] = d.count(len(d.b))
			if counts[i] == 0 {
				d.fail()
			}
			total += counts[i]
		}
	}
	if total > (len(d.b)-d.i)/3 {
		d.fail()
	}
	if d.err != nil {
		return
	}
	if total > 0 {
		addrs := make([]Address, total)
		for i := range addrs {
			a := &addrs[i]
			a.Name, a.Mailbox, a.Host = d.str(), d.str(), d.str()
		}
		for i, l := range lists {
			if counts[i] > 0 {
				*l = addrs[:counts[i]:counts[i]]
				addrs = addrs[counts[i]:]
			}
		}
	}
	if flags&efInReplyTo != 0 {
		n := d.count(len(d.b))
		if n == 0 {
			d.fail()
			return
		}
		env.InReplyTo = make([]string, n)
		for i := range env.InReplyTo {
			env.InReplyTo[i] = d.str()
		}
	}
	if flags&efMessageID != 0 {
		env.MessageID = d.str()
	}
}

// part decodes a part whose header and body must lie within [lo, hi].
func (d *decoder) part(depth int, lo, hi int64) *Part {
	if d.err != nil || depth > maxDecodeDepth || d.next >= len(d.parts) {
		d.fail()
		return nil
	}
	p := &d.parts[d.next]
	d.next++
	p.Type = d.str()
	p.Subtype = d.str()
	flags := d.uvarint()
	if flags&^pfAll != 0 {
		d.fail()
		return nil
	}
	if flags&pfParams != 0 {
		p.Params = d.params()
	}
	if flags&pfID != 0 {
		p.ID = d.str()
	}
	if flags&pfDescription != 0 {
		p.Description = d.str()
	}
	p.Encoding = "7BIT"
	if flags&pfEncoding != 0 {
		p.Encoding = d.str()
	}
	if flags&pfDisposition != 0 {
		p.Disposition = d.str()
	}
	if flags&pfDispositionParams != 0 {
		p.DispositionParams = d.params()
	}
	if flags&pfLanguage != 0 {
		n := d.count(len(d.b))
		if n == 0 {
			d.fail()
			return nil
		}
		p.Language = make([]string, n)
		for i := range p.Language {
			p.Language[i] = d.str()
		}
	}
	if flags&pfLocation != 0 {
		p.Location = d.str()
	}
	if flags&pfMD5 != 0 {
		p.MD5 = d.str()
	}
	p.HeaderStart = d.offset(hi)
	p.BodyStart = p.HeaderStart + d.offset(hi-p.HeaderStart)
	p.End = p.BodyStart + d.offset(hi-p.BodyStart)
	p.Lines = d.offset(hi)
	if p.HeaderStart < lo {
		d.fail()
	}
	if flags&pfEnvelope != 0 {
		p.Envelope = new(Envelope)
		d.envelope(p.Envelope)
	}
	if flags&pfChildren != 0 {
		n := d.count(len(d.parts) - d.next)
		if n == 0 || d.err != nil || d.nptr+n > len(d.ptrs) {
			d.fail()
			return nil
		}
		p.Children = d.ptrs[d.nptr : d.nptr+n : d.nptr+n]
		d.nptr += n
		lo := p.BodyStart
		for i := range p.Children {
			c := d.part(depth+1, lo, p.End)
			if d.err != nil {
				return nil
			}
			p.Children[i] = c
			lo = c.End
		}
	}
	if d.err != nil {
		return nil
	}
	return p
}
