package portability

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// Scanning iCalendar and vCard files: find each component's byte span and
// the few properties needed to group and name them, without parsing (and
// so without holding) the whole file. Parsing and validation happen per
// object when it is stored (check.go).

// bom is the UTF-8 byte order mark some programs write first.
const bom = "\xef\xbb\xbf"

// contentLine is a scanned line: its span, and its text unfolded with the
// continuation lines that follow (up to maxKeep bytes).
type contentLine struct {
	start, end int64
	num        int
	text       string
}

// contentLines reads unfolded content lines (RFC 5545 section 3.1) with
// their spans.
type contentLines struct {
	s       *lineScanner
	pending *contentLine
	cur     contentLine
}

func (c *contentLines) next() bool {
	var cur *contentLine
	if c.pending != nil {
		cur, c.pending = c.pending, nil
	}
	for c.s.next() {
		raw := c.s.line()
		if cur != nil && len(raw) > 0 && (raw[0] == ' ' || raw[0] == '\t') {
			if len(cur.text) < maxKeep {
				cur.text += string(raw[1:])
			}
			cur.end = c.s.off
			continue
		}
		line := &contentLine{start: c.s.start, end: c.s.off, num: c.s.num, text: string(raw)}
		if c.s.num == 1 && bytes.HasPrefix(raw, []byte(bom)) {
			line.start += int64(len(bom))
			line.text = line.text[len(bom):]
		}
		if cur == nil {
			if len(raw) == 0 {
				continue // blank lines between objects
			}
			cur = line
			continue
		}
		c.pending = line
		if len(raw) == 0 {
			c.pending = nil
		}
		break
	}
	if cur == nil {
		return false
	}
	c.cur = *cur
	return true
}

// propName returns the upper-cased name of a content line, its parameter
// text and its value.
func propName(text string) (name, params, value string) {
	// The value starts at the first ':' outside a quoted parameter value.
	quoted := false
	colon := -1
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case '"':
			quoted = !quoted
		case ':':
			if !quoted {
				colon = i
			}
		}
		if colon >= 0 {
			break
		}
	}
	head := text
	if colon >= 0 {
		head, value = text[:colon], text[colon+1:]
	}
	name, params, _ = strings.Cut(head, ";")
	if i := strings.LastIndexByte(name, '.'); i >= 0 { // vCard groups: "item1.EMAIL"
		name = name[i+1:]
	}
	return strings.ToUpper(strings.TrimSpace(name)), params, value
}

// tzidsOf returns the TZID parameter values in params.
func tzidsOf(params string) []string {
	var out []string
	for _, p := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(p, "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "TZID") {
			out = append(out, strings.Trim(v, `"`))
		}
	}
	return out
}

// calComp is one top-level component of a VCALENDAR.
type calComp struct {
	name       string // VEVENT, VTODO, VJOURNAL, VTIMEZONE, ...
	uid        string
	tzid       string // VTIMEZONE
	tzids      []string
	start, end int64
	firstLine  int64 // end of the BEGIN line (where a missing UID goes)
	line       int
}

// calObject is the components that become one stored object.
type calObject struct {
	uid      string
	comps    []*calComp
	addUID   bool
	calProps []byte // PRODID, CALSCALE of their VCALENDAR
}

// maxTimezones bounds the VTIMEZONE definitions kept in memory per file.
const maxTimezones = 4 << 20

// scanICS adds the calendar objects of the .ics file at path.
func (p *Plan) scanICS(path, rel, coll, collName string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	cl := &contentLines{s: newLineScanner(f)}
	zones := make(map[string][]byte) // TZID -> VTIMEZONE text
	zoneBytes := 0
	var objects []*calObject
	byUID := make(map[string]*calObject)
	var calProps []byte
	var comp *calComp
	depth := 0
	seenCal := false
	bad := func(line int, format string, args ...any) {
		p.addBad(Item{Kind: KindEvent, Source: fmt.Sprintf("%s: line %d", rel, line), Collection: coll, CollectionName: collName},
			fmt.Errorf(format, args...))
	}
	for cl.next() {
		ln := cl.cur
		name, params, value := propName(ln.text)
		switch {
		case name == "BEGIN":
			depth++
			v := strings.ToUpper(strings.TrimSpace(value))
			switch depth {
			case 1:
				if v != "VCALENDAR" {
					if !seenCal {
						return 0, fmt.Errorf("%s is not an iCalendar file (it starts with BEGIN:%s)", rel, v)
					}
					bad(ln.num, "BEGIN:%s outside a VCALENDAR", v)
				}
				seenCal = true
				calProps = nil
			case 2:
				comp = &calComp{name: v, start: ln.start, firstLine: ln.end, line: ln.num}
			}
		case name == "END":
			if depth == 2 && comp != nil {
				comp.end = ln.end
				switch comp.name {
				case "VTIMEZONE":
					if comp.tzid != "" && zones[comp.tzid] == nil && zoneBytes < maxTimezones {
						buf := make([]byte, comp.end-comp.start)
						if _, err := f.ReadAt(buf, comp.start); err == nil {
							zones[comp.tzid] = buf
							zoneBytes += len(buf)
						}
					}
				case "VEVENT", "VTODO", "VJOURNAL":
					o := byUID[comp.uid]
					if o == nil || comp.uid == "" {
						o = &calObject{uid: comp.uid, calProps: calProps}
						if comp.uid == "" {
							o.addUID = true
						} else {
							byUID[comp.uid] = o
						}
						objects = append(objects, o)
					}
					o.comps = append(o.comps, comp)
				default:
					bad(comp.line, "%s is not an event, task or journal entry: skipped", comp.name)
				}
				comp = nil
			}
			if depth > 0 {
				depth--
			}
		case depth == 1:
			switch name {
			case "PRODID", "CALSCALE":
				calProps = append(calProps, ln.text+"\r\n"...)
			case "X-WR-CALNAME":
				// The calendar's name as exported (by kreide too): the
				// name of a collection made for it.
				if collName == "" && coll != "" {
					collName = unescapeText(strings.TrimSpace(value))
				}
			}
		case depth == 2 && comp != nil:
			switch name {
			case "UID":
				comp.uid = strings.TrimSpace(value)
			case "TZID":
				comp.tzid = strings.TrimSpace(value)
			}
			comp.tzids = append(comp.tzids, tzidsOf(params)...)
		case depth > 2 && comp != nil:
			comp.tzids = append(comp.tzids, tzidsOf(params)...)
		}
	}
	if cl.s.err != nil {
		return 0, fmt.Errorf("reading %s: %w", rel, cl.s.err)
	}
	if !seenCal {
		return 0, fmt.Errorf("%s is not an iCalendar file (no BEGIN:VCALENDAR)", rel)
	}
	if comp != nil {
		bad(comp.line, "%s is cut off (no END:%s)", comp.name, comp.name)
	}
	for _, o := range objects {
		p.addCalObject(path, rel, coll, collName, o, zones)
	}
	return len(objects), nil
}

// addCalObject assembles one object: a VCALENDAR with the timezones its
// components use, then the components as they are in the file.
func (p *Plan) addCalObject(path, rel, coll, collName string, o *calObject, zones map[string][]byte) {
	head := []byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
	if len(o.calProps) == 0 {
		head = append(head, "PRODID:-//kreide//import//EN\r\n"...)
	} else {
		head = append(head, o.calProps...)
	}
	used := make(map[string]bool)
	pieces := []piece{{data: head}}
	for _, c := range o.comps {
		for _, tz := range c.tzids {
			if z := zones[tz]; z != nil && !used[tz] {
				used[tz] = true
				pieces = append(pieces, piece{data: z})
			}
		}
	}
	size := int64(0)
	for _, c := range o.comps {
		if o.addUID {
			// A component without UID gets one made from its content, so
			// importing the file again replaces it.
			sum := sha256.New()
			buf := make([]byte, c.end-c.start)
			if f, err := p.file(path); err == nil {
				f.ReadAt(buf, c.start)
			}
			sum.Write(buf)
			o.uid = "import-" + hex.EncodeToString(sum.Sum(nil))[:32]
			pieces = append(pieces, piece{file: path, off: c.start, n: c.firstLine - c.start},
				piece{data: []byte("UID:" + o.uid + "\r\n")},
				piece{file: path, off: c.firstLine, n: c.end - c.firstLine})
		} else {
			pieces = append(pieces, piece{file: path, off: c.start, n: c.end - c.start})
		}
		size += c.end - c.start
	}
	pieces = append(pieces, piece{data: []byte("END:VCALENDAR\r\n")})
	src := fmt.Sprintf("%s: %s %s", rel, strings.ToLower(o.comps[0].name[1:]), shortUID(o.uid))
	p.add(&entry{item: Item{Kind: KindEvent, Source: src, Size: size, Collection: coll, CollectionName: collName}, pieces: pieces})
}

// unescapeText undoes escapeText.
func unescapeText(s string) string {
	return strings.NewReplacer(`\\`, `\`, `\;`, ";", `\,`, ",", `\n`, "\n", `\N`, "\n").Replace(s)
}

func shortUID(uid string) string {
	if len(uid) > 60 {
		return uid[:57] + "..."
	}
	return uid
}

// scanVCF adds each vCard of the .vcf file at path.
func (p *Plan) scanVCF(path, rel, coll, collName string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	cl := &contentLines{s: newLineScanner(f)}
	depth, count := 0, 0
	var start, firstLine int64
	var startLine int
	var uid string
	var hasUID bool
	for cl.next() {
		ln := cl.cur
		name, _, value := propName(ln.text)
		switch {
		case name == "BEGIN":
			if depth == 0 {
				if !strings.EqualFold(strings.TrimSpace(value), "VCARD") {
					if count == 0 {
						return 0, fmt.Errorf("%s is not a vCard file (it starts with BEGIN:%s)", rel, strings.TrimSpace(value))
					}
				}
				start, firstLine, startLine, uid, hasUID = ln.start, ln.end, ln.num, "", false
			}
			depth++
		case name == "END":
			if depth == 1 {
				count++
				it := Item{Kind: KindContact, Size: ln.end - start, Collection: coll, CollectionName: collName}
				var pieces []piece
				if hasUID {
					it.Source = fmt.Sprintf("%s: contact %s", rel, shortUID(uid))
					pieces = []piece{{file: path, off: start, n: ln.end - start}}
				} else {
					buf := make([]byte, ln.end-start)
					f.ReadAt(buf, start)
					sum := sha256.Sum256(buf)
					uid = "import-" + hex.EncodeToString(sum[:])[:32]
					it.Source = fmt.Sprintf("%s: contact %d (line %d)", rel, count, startLine)
					pieces = []piece{{file: path, off: start, n: firstLine - start},
						{data: []byte("UID:" + uid + "\r\n")}, {file: path, off: firstLine, n: ln.end - firstLine}}
				}
				p.add(&entry{item: it, pieces: pieces})
			}
			if depth > 0 {
				depth--
			}
		case depth == 0:
			if count == 0 {
				return 0, fmt.Errorf("%s is not a vCard file", rel)
			}
		case depth == 1 && name == "UID":
			uid, hasUID = strings.TrimSpace(value), strings.TrimSpace(value) != ""
		}
	}
	if cl.s.err != nil {
		return count, fmt.Errorf("reading %s: %w", rel, cl.s.err)
	}
	if depth > 0 {
		p.addBad(Item{Kind: KindContact, Source: fmt.Sprintf("%s: line %d", rel, startLine), Collection: coll, CollectionName: collName},
			fmt.Errorf("vCard is cut off (no END:VCARD)"))
	}
	if count == 0 && depth == 0 {
		return 0, fmt.Errorf("%s is not a vCard file (no BEGIN:VCARD)", rel)
	}
	return count, nil
}

// looksLike reports whether head starts (after blank lines and a BOM) with
// BEGIN:what.
func looksLike(head []byte, what string) bool {
	head = bytes.TrimPrefix(head, []byte(bom))
	head = bytes.TrimLeft(head, "\r\n\t ")
	return len(head) >= 6+len(what) && strings.EqualFold(string(head[:6+len(what)]), "BEGIN:"+what)
}
