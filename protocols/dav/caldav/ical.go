package caldav

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	ical "github.com/emersion/go-ical"

	"kreide/store"
)

// maxNesting bounds BEGIN/END nesting in iCalendar and vCard data (the
// go-ical decoder recurses per level).
const maxNesting = 20

// checkNesting refuses data nested deeper than maxNesting before it reaches
// a recursive parser.
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

// calObject is a parsed, validated calendar object resource.
type calObject struct {
	cal   *ical.Calendar
	comp  string // VEVENT, VTODO or VJOURNAL
	uid   string
	comps []*ical.Component // the components of that type
}

func invalidCal(msg string) *davError {
	return precondition(http.StatusBadRequest, nsCal, "valid-calendar-data", msg)
}

func invalidCalObject(msg string) *davError {
	return precondition(http.StatusBadRequest, nsCal, "valid-calendar-object-resource", msg)
}

// guard turns a panic in a third-party parser (go-ical panics on some
// malformed parameters) into an error: bad input never takes the process
// down (invariant 5).
func guard(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("malformed data (%v)", r)
	}
}

// decodeCalendar parses exactly one VCALENDAR.
func decodeCalendar(data []byte) (cal *ical.Calendar, err error) {
	defer guard(&err)
	if !utf8.Valid(data) {
		return nil, errors.New("not UTF-8")
	}
	if err := checkNesting(data); err != nil {
		return nil, err
	}
	dec := ical.NewDecoder(bytes.NewReader(data))
	cal, err = dec.Decode()
	if err != nil {
		return nil, err
	}
	if _, err := dec.Decode(); err != io.EOF {
		return nil, errors.New("more than one VCALENDAR, or data after it")
	}
	return cal, nil
}

// parseCalObject validates a calendar object resource (RFC 4791, section
// 4.1): one VCALENDAR without METHOD, one kind of component besides
// VTIMEZONE, one UID, at most one master and overrides with distinct
// RECURRENCE-IDs, parsable dates and recurrence rules.
func parseCalObject(data []byte, zones *zoneCache) (*calObject, *davError) {
	cal, err := decodeCalendar(data)
	if err != nil {
		return nil, invalidCal("iCalendar: " + err.Error())
	}
	if cal.Props.Get(ical.PropMethod) != nil {
		return nil, invalidCalObject("METHOD is not allowed in a stored calendar object")
	}
	o := &calObject{cal: cal}
	for _, c := range cal.Children {
		if c.Name == ical.CompTimezone {
			continue
		}
		if o.comp == "" {
			o.comp = c.Name
		} else if c.Name != o.comp {
			return nil, invalidCalObject("more than one kind of component")
		}
		uid, err := c.Props.Text(ical.PropUID)
		if err != nil || uid == "" {
			return nil, invalidCalObject("component without UID")
		}
		if o.uid == "" {
			o.uid = uid
		} else if uid != o.uid {
			return nil, invalidCalObject("components with different UIDs")
		}
		o.comps = append(o.comps, c)
	}
	switch o.comp {
	case ical.CompEvent, ical.CompToDo, ical.CompJournal:
	case "":
		return nil, invalidCalObject("no event, task or journal entry")
	default:
		return nil, precondition(http.StatusForbidden, nsCal, "supported-calendar-component", o.comp+" is not supported")
	}
	masters := 0
	rids := make(map[string]bool)
	for _, c := range o.comps {
		rid := c.Props.Get(ical.PropRecurrenceID)
		if rid == nil {
			if masters++; masters > 1 {
				return nil, invalidCalObject("more than one component without RECURRENCE-ID")
			}
			continue
		}
		if rids[rid.Value] {
			return nil, invalidCalObject("duplicate RECURRENCE-ID")
		}
		rids[rid.Value] = true
	}
	// Parse every date and rule once, so bad ones are refused now rather
	// than failing queries later.
	p := newParser(zones, time.UTC, cal)
	if err := p.each(seriesOf(o.comps), time.Time{}, time.Time{}, func(occurrence) bool { return false }); err != nil {
		return nil, invalidCal(err.Error())
	}
	for _, c := range o.comps {
		if _, err := p.single(c); err != nil {
			return nil, invalidCal(err.Error())
		}
		for _, name := range []string{ical.PropExceptionDates, ical.PropRecurrenceDates} {
			if _, _, err := p.list(c, name); err != nil {
				return nil, invalidCal(err.Error())
			}
		}
	}
	return o, nil
}

// floatSlack widens ranges of floating times: they may be read in any zone
// from UTC-12 to UTC+14.
const floatSlack = 14 * time.Hour

// summary computes what the store keeps for range queries: the span from
// the first start to the last end of all occurrences, in UTC (widened for
// floating times), and whether it is exact.
func (o *calObject) summary(zones *zoneCache) store.ObjectSummary {
	sum := store.ObjectSummary{UID: o.uid, Component: o.comp}
	p := newParser(zones, time.UTC, o.cal)
	s := seriesOf(o.comps)
	var first, last time.Time
	unboundedStart, unboundedEnd, inexact := false, !s.bounded(), false
	visit := func(oc occurrence) bool {
		inexact = inexact || oc.inexact || oc.date
		switch oc.test {
		case testAlways:
			unboundedStart, unboundedEnd = true, true
		case testAfter:
			unboundedEnd = true
		case testNever:
			return true
		}
		if first.IsZero() || oc.start.Before(first) {
			first = oc.start
		}
		if oc.end.After(last) {
			last = oc.end
		}
		// An endless series: its first instance gives the start; the end
		// is unbounded anyway.
		return !unboundedEnd
	}
	// The master's instances come in time order; overrides may move an
	// instance anywhere, so they are visited separately.
	err := p.each(series{master: s.master}, time.Time{}, time.Time{}, visit)
	for _, c := range s.overrides {
		if err != nil {
			break
		}
		var oc occurrence
		if oc, err = p.single(c); err == nil {
			visit(oc)
		}
	}
	if err != nil {
		unboundedStart, unboundedEnd = true, true
	}
	if first.IsZero() && last.IsZero() && !unboundedStart && !unboundedEnd {
		// Nothing ever matches a time range (a VJOURNAL without DTSTART).
		return sum
	}
	if !unboundedStart {
		sum.Start = first.UTC()
		if inexact {
			sum.Start = sum.Start.Add(-floatSlack)
		}
	}
	if !unboundedEnd {
		sum.End = last.UTC()
		if inexact {
			sum.End = sum.End.Add(floatSlack)
		}
	}
	sum.Exact = o.comp == ical.CompEvent && !s.recurs() && len(o.comps) == 1 && !inexact && err == nil
	return sum
}

// exactOverlap is the VEVENT time-range test on an exact summary.
func exactOverlap(sum *store.ObjectSummary, start, end time.Time) bool {
	oc := occurrence{start: sum.Start, end: sum.End, test: testInterval}
	if !sum.End.After(sum.Start) {
		oc.test = testPoint
	}
	return oc.overlaps(start, end)
}

// encodeCalendar writes a calendar without go-ical's checks on required
// properties: partial retrieval (calendar-data with comp/prop) may leave
// some out on purpose.
func encodeCalendar(w *bytes.Buffer, c *ical.Component) {
	w.WriteString("BEGIN:" + c.Name + "\r\n")
	names := make([]string, 0, len(c.Props))
	for n := range c.Props {
		names = append(names, n)
	}
	// Keep a stable, conventional order: UID and dates first is not
	// required; alphabetical keeps output deterministic.
	sort.Strings(names)
	for _, n := range names {
		for _, p := range c.Props[n] {
			writeContentLine(w, &p)
		}
	}
	for _, ch := range c.Children {
		encodeCalendar(w, ch)
	}
	w.WriteString("END:" + c.Name + "\r\n")
}

func writeContentLine(w *bytes.Buffer, p *ical.Prop) {
	var line strings.Builder
	line.WriteString(p.Name)
	keys := make([]string, 0, len(p.Params))
	for k := range p.Params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		line.WriteString(";" + k + "=")
		for i, v := range p.Params[k] {
			if i > 0 {
				line.WriteString(",")
			}
			if strings.ContainsAny(v, ";:,") {
				line.WriteString(`"` + strings.ReplaceAll(v, `"`, "'") + `"`)
			} else {
				line.WriteString(v)
			}
		}
	}
	line.WriteString(":" + p.Value)
	fold(w, line.String())
}

// fold writes a content line folded at 75 octets (RFC 5545, section 3.1),
// never inside a UTF-8 sequence.
func fold(w *bytes.Buffer, s string) {
	limit := 75
	for len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		w.WriteString(s[:cut] + "\r\n ")
		s = s[cut:]
		limit = 74
	}
	w.WriteString(s + "\r\n")
}
