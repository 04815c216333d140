package portability

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	ical "github.com/emersion/go-ical"
	"github.com/emersion/go-vcard"

	"kreide/store"
)

// Validation of calendar objects and contacts before they are stored, and
// the summary the store keeps for time-range queries. CalDAV's PUT
// (protocols/dav/caldav) does the same with a full recurrence expansion;
// this summary is coarser but never too narrow: whatever it cannot bound
// exactly is left unbounded or widened and marked inexact, so that CalDAV
// checks such objects against their content.

// maxObject bounds one calendar object or contact.
const maxObject = 16 << 20

// maxNesting bounds BEGIN/END nesting before the recursive parsers run.
const maxNesting = 20

// guard turns a panic in a third-party parser into an error: bad input
// never takes serve down.
func guard(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("malformed data (%v)", r)
	}
}

func checkNesting(data []byte) error {
	depth := 0
	for line := range bytes.Lines(data) {
		l := bytes.TrimRight(line, "\r\n")
		switch {
		case len(l) >= 6 && strings.EqualFold(string(l[:6]), "BEGIN:"):
			if depth++; depth > maxNesting {
				return errors.New("components nested too deeply")
			}
		case len(l) >= 4 && strings.EqualFold(string(l[:4]), "END:"):
			depth--
		}
	}
	return nil
}

// checkCalendar validates a calendar object resource (one VCALENDAR, one
// kind of component, one UID, RFC 4791 section 4.1) and summarizes it.
func checkCalendar(data []byte) (sum store.ObjectSummary, err error) {
	defer guard(&err)
	if !utf8.Valid(data) {
		return sum, errors.New("not UTF-8")
	}
	if err := checkNesting(data); err != nil {
		return sum, err
	}
	dec := ical.NewDecoder(bytes.NewReader(data))
	cal, err := dec.Decode()
	if err != nil {
		return sum, err
	}
	if _, err := dec.Decode(); err != io.EOF {
		return sum, errors.New("more than one VCALENDAR")
	}
	if cal.Props.Get(ical.PropMethod) != nil {
		return sum, errors.New("METHOD is not allowed in a stored calendar object")
	}
	var comps []*ical.Component
	masters := 0
	rids := make(map[string]bool)
	for _, c := range cal.Children {
		if c.Name == ical.CompTimezone {
			continue
		}
		if sum.Component == "" {
			sum.Component = c.Name
		} else if c.Name != sum.Component {
			return sum, errors.New("more than one kind of component")
		}
		uid, err := c.Props.Text(ical.PropUID)
		if err != nil || uid == "" {
			return sum, errors.New("component without UID")
		}
		if sum.UID == "" {
			sum.UID = uid
		} else if uid != sum.UID {
			return sum, errors.New("components with different UIDs")
		}
		if rid := c.Props.Get(ical.PropRecurrenceID); rid == nil {
			if masters++; masters > 1 {
				return sum, fmt.Errorf("two components with UID %s and no RECURRENCE-ID", uid)
			}
		} else if rids[rid.Value] {
			return sum, errors.New("duplicate RECURRENCE-ID")
		} else {
			rids[rid.Value] = true
		}
		comps = append(comps, c)
	}
	switch sum.Component {
	case store.CompEvent, store.CompTodo, store.CompJournal:
	case "":
		return sum, errors.New("no event, task or journal entry")
	default:
		return sum, fmt.Errorf("%s is not supported", sum.Component)
	}
	return summarize(sum, comps)
}

// floatSlack widens the range of floating times and dates: they may be
// read in any zone from UTC-12 to UTC+14.
const floatSlack = 14 * time.Hour

// summarize bounds every occurrence of comps. Every date must parse.
func summarize(sum store.ObjectSummary, comps []*ical.Component) (store.ObjectSummary, error) {
	var first, last time.Time
	unboundedStart, unboundedEnd, inexact, recurs := false, false, false, false
	for _, c := range comps {
		if c.Props.Get(ical.PropRecurrenceRule) != nil || c.Props.Get(ical.PropRecurrenceDates) != nil {
			recurs = true
		}
		if c.Props.Get(ical.PropRecurrenceDates) != nil {
			unboundedStart = true // RDATEs may come before DTSTART
		}
		start, startExact, hasStart, err := when(c.Props.Get(ical.PropDateTimeStart))
		if err != nil {
			return sum, fmt.Errorf("DTSTART: %w", err)
		}
		endProp := c.Props.Get(ical.PropDateTimeEnd)
		if c.Name == ical.CompToDo {
			endProp = c.Props.Get(ical.PropDue)
		}
		end, endExact, hasEnd, err := when(endProp)
		if err != nil {
			return sum, fmt.Errorf("%s: %w", endProp.Name, err)
		}
		if !hasStart && !hasEnd {
			unboundedStart, unboundedEnd = true, true
			continue
		}
		switch {
		case !hasStart:
			start, startExact = end, endExact
		case hasEnd:
		case c.Props.Get(ical.PropDuration) != nil:
			d, err := c.Props.Get(ical.PropDuration).Duration()
			if err != nil {
				return sum, fmt.Errorf("DURATION: %w", err)
			}
			end, endExact = start.Add(d), startExact
			if d < 0 {
				unboundedStart, unboundedEnd = true, true
			}
		case !startExact && isDate(c.Props.Get(ical.PropDateTimeStart)):
			end, endExact = start.Add(24*time.Hour), false
		default:
			end, endExact = start, startExact
		}
		if end.Before(start) {
			start, end = end, start
		}
		inexact = inexact || !startExact || !endExact
		if first.IsZero() || start.Before(first) {
			first = start
		}
		if end.After(last) {
			last = end
		}
	}
	if recurs {
		unboundedEnd = true
	}
	if !unboundedStart && !first.IsZero() {
		sum.Start = first.UTC()
		if inexact {
			sum.Start = sum.Start.Add(-floatSlack)
		}
	}
	if !unboundedEnd && !last.IsZero() {
		sum.End = last.UTC()
		if inexact {
			sum.End = sum.End.Add(floatSlack)
		}
	}
	sum.Exact = sum.Component == store.CompEvent && len(comps) == 1 && !recurs && !inexact &&
		!sum.Start.IsZero() && !sum.End.IsZero()
	return sum, nil
}

func isDate(p *ical.Prop) bool {
	return p != nil && (p.ValueType() == ical.ValueDate || len(p.Value) == 8)
}

// when reads a DATE or DATE-TIME property. exact is false for dates,
// floating times and zones this machine does not know (they are read as
// UTC and widened by floatSlack).
func when(p *ical.Prop) (t time.Time, exact, ok bool, err error) {
	if p == nil {
		return time.Time{}, false, false, nil
	}
	v := strings.TrimSpace(p.Value)
	if isDate(p) {
		t, err = time.Parse("20060102", v)
		return t, false, err == nil, err
	}
	if strings.HasSuffix(v, "Z") {
		t, err = time.Parse("20060102T150405Z", v)
		return t, true, err == nil, err
	}
	loc, exact := time.UTC, false
	if tzid := p.Params.Get(ical.PropTimezoneID); tzid != "" {
		if l, lerr := time.LoadLocation(strings.TrimPrefix(tzid, "/")); lerr == nil {
			loc, exact = l, true
		}
	}
	t, err = time.ParseInLocation("20060102T150405", v, loc)
	return t, exact, err == nil, err
}

// checkVCard validates one contact: exactly one vCard, version 2.1, 3.0 or
// 4.0, with FN or N. It returns its UID.
func checkVCard(data []byte) (uid string, err error) {
	defer guard(&err)
	if !utf8.Valid(data) {
		return "", errors.New("not UTF-8")
	}
	if err := checkNesting(data); err != nil {
		return "", err
	}
	dec := vcard.NewDecoder(bytes.NewReader(data))
	card, err := dec.Decode()
	if err == io.EOF {
		return "", errors.New("no vCard")
	}
	if err != nil {
		return "", err
	}
	if _, err := dec.Decode(); err != io.EOF {
		return "", errors.New("more than one vCard")
	}
	switch card.Value(vcard.FieldVersion) {
	case "2.1", "3.0", "4.0":
	default:
		return "", errors.New("VERSION must be 3.0 or 4.0")
	}
	if card.Value(vcard.FieldFormattedName) == "" && card.Get(vcard.FieldName) == nil {
		return "", errors.New("no FN or N")
	}
	return card.Value(vcard.FieldUID), nil
}

// objectName is the resource name of an object: its UID when that makes
// a tidy URL segment, else a hash of it, so that importing the same object
// again replaces it.
func objectName(uid, ext string, data []byte) string {
	if uid == "" {
		sum := sha256.Sum256(data)
		return hex.EncodeToString(sum[:16]) + ext
	}
	if len(uid) <= 200 && strings.IndexFunc(uid, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.@+=", r))
	}) < 0 && uid[0] != '.' {
		return uid + ext
	}
	sum := sha256.Sum256([]byte(uid))
	return hex.EncodeToString(sum[:16]) + ext
}
