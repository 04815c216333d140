package imap

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"kreide/store"
	"kreide/store/message"
)

// Search serves SEARCH and UID SEARCH, with ESEARCH return options
// (RFC 4731) and SEARCHRES (RFC 5182). Strings match case-insensitively as
// substrings of the decoded text: RFC 2047 words in headers, transfer
// encodings and charsets in bodies, all compared as UTF-8.
func (s *session) Search(kind imapserver.NumKind, c *imap.SearchCriteria, opts *imap.SearchOptions) (data *imap.SearchData, err error) {
	defer s.guard("SEARCH", time.Now(), &err)
	if s.sel == nil {
		return nil, errNoSelected
	}
	if opts.ReturnSave {
		s.searchRes = nil // a failed SEARCH leaves $ empty (RFC 5182 2.1)
	}
	structure := needsStructure(c)
	batch := batchMeta
	if structure {
		batch = batchStruct
	}
	v := s.sel
	var hits []msgRef
	for i := 0; i < len(v.uids); i += batch {
		uids := v.uids[i:min(i+batch, len(v.uids))]
		// The cached header block too: HEADER, FROM, SUBJECT and the
		// like then need no content read.
		msgs, err := s.loadWith(uids, store.FetchOptions{Structure: structure, Header: structure})
		if err != nil {
			return nil, err
		}
		for j, uid := range uids {
			m := msgs[uid]
			if m == nil {
				continue
			}
			mc := &matcher{s: s, seq: uint32(i + j + 1), m: m}
			ok, err := mc.match(c)
			mc.close()
			if errors.Is(err, errGone) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if ok {
				hits = append(hits, msgRef{mc.seq, uid})
			}
		}
	}
	data = &imap.SearchData{Count: uint32(len(hits))}
	if kind == imapserver.NumKindUID {
		set := imap.UIDSet{}
		for _, h := range hits {
			set.AddNum(imap.UID(h.uid))
		}
		data.All = set
		if len(hits) > 0 {
			data.Min, data.Max = hits[0].uid, hits[len(hits)-1].uid
		}
	} else {
		set := imap.SeqSet{}
		for _, h := range hits {
			set.AddNum(h.seq)
		}
		data.All = set
		if len(hits) > 0 {
			data.Min, data.Max = hits[0].seq, hits[len(hits)-1].seq
		}
	}
	if opts.ReturnSave {
		s.searchRes = saveResult(hits, opts)
	}
	return data, nil
}

// saveResult is what SEARCH RETURN (SAVE ...) keeps as "$": only MIN
// and/or MAX when just those are asked for (RFC 5182 2.4).
func saveResult(hits []msgRef, opts *imap.SearchOptions) []uint32 {
	if len(hits) == 0 {
		return []uint32{}
	}
	if !opts.ReturnAll && !opts.ReturnCount && (opts.ReturnMin || opts.ReturnMax) {
		var out []uint32
		if opts.ReturnMin {
			out = append(out, hits[0].uid)
		}
		if opts.ReturnMax && (len(out) == 0 || hits[len(hits)-1].uid != out[0]) {
			out = append(out, hits[len(hits)-1].uid)
		}
		return out
	}
	return refUIDs(hits)
}

// needsStructure reports whether criteria look at headers or bodies.
func needsStructure(c *imap.SearchCriteria) bool {
	if len(c.Header) > 0 || len(c.Body) > 0 || len(c.Text) > 0 || !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		return true
	}
	for i := range c.Not {
		if needsStructure(&c.Not[i]) {
			return true
		}
	}
	for i := range c.Or {
		if needsStructure(&c.Or[i][0]) || needsStructure(&c.Or[i][1]) {
			return true
		}
	}
	return false
}

// matcher evaluates criteria against one message, reading its header and
// body only when a criterion needs them, and only once.
type matcher struct {
	s   *session
	seq uint32
	m   *store.Message
	c   *content
	hdr []byte
}

func (mc *matcher) close() {
	if mc.c != nil {
		mc.c.close()
	}
}

func (mc *matcher) reader() (*store.BlobReader, error) {
	if mc.c == nil {
		mc.c = &content{s: mc.s, m: mc.m}
	}
	return mc.c.reader()
}

// header returns the message's raw header block.
func (mc *matcher) header() ([]byte, error) {
	if mc.hdr != nil {
		return mc.hdr, nil
	}
	if mc.m.Header != nil {
		mc.hdr = mc.m.Header
		return mc.hdr, nil
	}
	br, err := mc.reader()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, min(mc.m.Structure.HeaderSize, maxHeaderRead))
	if _, err := br.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, mc.s.mapErr(err)
	}
	mc.hdr = buf
	return buf, nil
}

func (mc *matcher) match(c *imap.SearchCriteria) (bool, error) {
	v := mc.s.sel
	uid := mc.m.UID
	for _, set := range c.SeqNum {
		if !inRanges(len(set), func(i int) (uint32, uint32) { return set[i].Start, set[i].Stop }, mc.seq, uint32(len(v.uids))) {
			return false, nil
		}
	}
	for _, set := range c.UID {
		if imap.IsSearchRes(set) {
			if !slices.Contains(mc.s.searchRes, uid) {
				return false, nil
			}
		} else if !inRanges(len(set), func(i int) (uint32, uint32) { return uint32(set[i].Start), uint32(set[i].Stop) }, uid, v.maxUID()) {
			return false, nil
		}
	}
	for _, f := range c.Flag {
		if strings.EqualFold(string(f), `\Recent`) || !mc.m.Has(string(f)) {
			return false, nil
		}
	}
	for _, f := range c.NotFlag {
		if !strings.EqualFold(string(f), `\Recent`) && mc.m.Has(string(f)) {
			return false, nil
		}
	}
	if c.Larger > 0 && mc.m.Size <= c.Larger {
		return false, nil
	}
	if c.Smaller > 0 && mc.m.Size >= c.Smaller {
		return false, nil
	}
	if !inDays(mc.m.InternalDate, c.Since, c.Before) {
		return false, nil
	}
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		sent := mc.m.Structure.Envelope.Date
		if sent.IsZero() {
			sent = mc.m.InternalDate // no usable Date: header
		}
		if !inDays(sent, c.SentSince, c.SentBefore) {
			return false, nil
		}
	}
	for _, h := range c.Header {
		ok, err := mc.matchHeader(h.Key, h.Value)
		if !ok || err != nil {
			return false, err
		}
	}
	for _, text := range c.Body {
		ok, err := mc.bodyContains(fold(text))
		if !ok || err != nil {
			return false, err
		}
	}
	for _, text := range c.Text {
		needle := fold(text)
		hdr, err := mc.header()
		if err != nil {
			return false, err
		}
		if bytes.Contains([]byte(fold(message.DecodeHeaderText(string(hdr)))), needle) {
			continue
		}
		ok, err := mc.bodyContains(needle)
		if !ok || err != nil {
			return false, err
		}
	}
	for i := range c.Not {
		ok, err := mc.match(&c.Not[i])
		if ok || err != nil {
			return false, err
		}
	}
	for i := range c.Or {
		ok, err := mc.match(&c.Or[i][0])
		if err != nil {
			return false, err
		}
		if !ok {
			if ok, err = mc.match(&c.Or[i][1]); !ok || err != nil {
				return false, err
			}
		}
	}
	return true, nil
}

// inRanges reports whether n is in a sequence or UID set; 0 stands for
// "*", the largest number in use (RFC 9051 9, seq-number).
func inRanges(count int, at func(int) (uint32, uint32), n, largest uint32) bool {
	for i := range count {
		a, b := at(i)
		if a == 0 {
			a = largest
		}
		if b == 0 {
			b = largest
		}
		if a > b {
			a, b = b, a
		}
		if n >= a && n <= b {
			return true
		}
	}
	return false
}

// inDays compares dates by day, disregarding time and time zone (RFC 9051
// 6.4.4): since <= day(t) < before.
func inDays(t, since, before time.Time) bool {
	day := func(t time.Time) time.Time {
		y, m, d := t.Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	if !since.IsZero() && day(t).Before(day(since)) {
		return false
	}
	if !before.IsZero() && !day(t).Before(day(before)) {
		return false
	}
	return true
}

func fold(s string) []byte { return bytes.ToLower([]byte(s)) }

// matchHeader serves HEADER, FROM, TO, CC, BCC and SUBJECT. The address
// fields and the subject come from the cached envelope (no decryption of
// the content); other fields from the header itself. An empty value
// matches every message that has the field.
func (mc *matcher) matchHeader(key, value string) (bool, error) {
	needle := fold(value)
	if text, ok := envelopeField(&mc.m.Structure.Envelope, key); ok && len(needle) > 0 {
		return bytes.Contains(fold(text), needle), nil
	}
	hdr, err := mc.header()
	if err != nil {
		return false, err
	}
	vals := message.HeaderValues(hdr, key)
	if len(needle) == 0 {
		return len(vals) > 0, nil
	}
	for _, v := range vals {
		if bytes.Contains(fold(v), needle) {
			return true, nil
		}
	}
	return false, nil
}

// envelopeField returns the decoded text of a header field the envelope
// holds.
func envelopeField(env *message.Envelope, key string) (string, bool) {
	switch strings.ToLower(key) {
	case "subject":
		return env.Subject, true
	case "from":
		return addressText(env.From), true
	case "to":
		return addressText(env.To), true
	case "cc":
		return addressText(env.Cc), true
	case "bcc":
		return addressText(env.Bcc), true
	}
	return "", false
}

// addressText renders addresses as a person would read them:
// "Name <mailbox@host>, ...", with group names.
func addressText(addrs []message.Address) string {
	var b strings.Builder
	for _, a := range addrs {
		switch {
		case a.IsGroupStart():
			b.WriteString(a.Mailbox + ": ")
		case a.IsGroupEnd():
			b.WriteString("; ")
		default:
			if a.Name != "" {
				b.WriteString(a.Name + " ")
			}
			b.WriteString("<" + a.Addr() + ">, ")
		}
	}
	return b.String()
}

// bodyContains searches the text parts of the body, decoded to UTF-8, and
// the headers of embedded messages, streaming.
func (mc *matcher) bodyContains(needle []byte) (bool, error) {
	br, err := mc.reader()
	if err != nil {
		return false, err
	}
	var found bool
	var ferr error
	mc.m.Structure.Walk(func(_ []int, p *message.Part) bool {
		if found || ferr != nil {
			return false
		}
		switch {
		case p.IsMessage():
			c := p.Children[0]
			hdr := make([]byte, min(c.HeaderSize(), maxHeaderRead))
			if _, err := br.ReadAt(hdr, c.HeaderStart); err != nil && !errors.Is(err, io.EOF) {
				ferr = err
				return false
			}
			found = bytes.Contains(fold(message.DecodeHeaderText(string(hdr))), needle)
		case p.IsMultipart():
		case p.Type == "text":
			found, ferr = containsFold(message.TextReader(p, io.NewSectionReader(br, p.BodyStart, p.Size())), needle)
		}
		return true
	})
	if ferr != nil {
		return false, mc.s.mapErr(ferr)
	}
	return found, nil
}

// containsFold reports whether r's text contains needle (already lower
// case), case-insensitively, reading r in chunks: only the last
// len(needle)-1 bytes are carried from one chunk to the next.
func containsFold(r io.Reader, needle []byte) (bool, error) {
	if len(needle) == 0 {
		return true, nil
	}
	buf := make([]byte, 32<<10)
	var pend, tail []byte
	for {
		n, err := r.Read(buf)
		data := append(pend, buf[:n]...)
		cut := len(data)
		if err == nil {
			cut = completeRunes(data)
		}
		pend = slices.Clone(data[cut:])
		win := append(tail, bytes.ToLower(data[:cut])...)
		if bytes.Contains(win, needle) {
			return true, nil
		}
		keep := min(len(win), len(needle)-1)
		tail = slices.Clone(win[len(win)-keep:])
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// completeRunes returns the length of b without a UTF-8 sequence cut off
// at its end.
func completeRunes(b []byte) int {
	i := len(b) - 1
	for i >= 0 && len(b)-i < utf8.UTFMax && !utf8.RuneStart(b[i]) {
		i--
	}
	if i >= 0 && !utf8.FullRune(b[i:]) {
		return i
	}
	return len(b)
}
