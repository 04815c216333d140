package caldav

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	ical "github.com/emersion/go-ical"
	rrule "github.com/teambition/rrule-go"
)

// maxIterations bounds the instances computed for one object in one
// request (an RRULE with FREQ=SECONDLY must not eat the CPU).
const maxIterations = 50000

var errTooManyInstances = errors.New("too many recurrence instances")

// rangeTest is how a time-range is compared with one occurrence
// (RFC 4791, section 9.9, for each kind of component and its properties).
type rangeTest uint8

const (
	testInterval rangeTest = iota // VEVENT with a duration: start < e && end > s
	testPoint                     // zero duration: s <= start && e > start
	testTodoDur                   // VTODO DTSTART+DURATION: s <= end && (e > start || e >= end)
	testTodoDue                   // VTODO DTSTART+DUE: (s < end || s <= start) && (e > start || e >= end)
	testDueOnly                   // VTODO DUE only: s < end && e >= end
	testClosed                    // VTODO COMPLETED/CREATED: s <= end && e >= start
	testAfter                     // VTODO CREATED only: e > start
	testAlways                    // VTODO without dates
	testNever                     // VJOURNAL without DTSTART
	testDay                       // VJOURNAL DATE: s <= end && e > start (end = start + 1 day)
)

var (
	farPast   = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	farFuture = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

// occurrence is one instance of a calendar component.
type occurrence struct {
	start, end time.Time
	test       rangeTest
	comp       *ical.Component // the master or the override it comes from
	recurID    time.Time       // zero when the component does not recur
	date       bool            // all-day
	inexact    bool            // floating or approximate zone
}

// overlaps applies the RFC 4791 time-range test; zero s or e is unbounded.
func (o *occurrence) overlaps(s, e time.Time) bool {
	if s.IsZero() {
		s = farPast
	}
	if e.IsZero() {
		e = farFuture
	}
	st, en := o.start, o.end
	switch o.test {
	case testInterval:
		return st.Before(e) && en.After(s)
	case testPoint:
		return !s.After(st) && e.After(st)
	case testTodoDur:
		return !s.After(en) && (e.After(st) || !e.Before(en))
	case testTodoDue:
		return (s.Before(en) || !s.After(st)) && (e.After(st) || !e.Before(en))
	case testDueOnly:
		return s.Before(en) && !e.Before(en)
	case testClosed:
		return !s.After(en) && !e.Before(st)
	case testAfter:
		return e.After(st)
	case testAlways:
		return true
	case testDay:
		return !s.After(en) && e.After(st)
	}
	return false
}

// single computes the occurrence a component describes by itself (its
// DTSTART and end), ignoring recurrence.
func (p *parser) single(c *ical.Component) (occurrence, error) {
	o := occurrence{comp: c}
	start, hasStart, err := p.prop(c, ical.PropDateTimeStart)
	if err != nil {
		return o, err
	}
	o.start, o.date, o.inexact = start.t, start.date, start.floating
	var dur time.Duration
	hasDur := false
	if d := c.Props.Get(ical.PropDuration); d != nil {
		if dur, err = d.Duration(); err != nil {
			return o, fmt.Errorf("DURATION: %v", err)
		}
		hasDur = true
	}
	switch c.Name {
	case ical.CompEvent:
		if !hasStart {
			return o, errors.New("VEVENT without DTSTART")
		}
		end, hasEnd, err := p.prop(c, ical.PropDateTimeEnd)
		switch {
		case err != nil:
			return o, err
		case hasEnd:
			o.end = end.t
			o.inexact = o.inexact || end.floating
		case hasDur:
			o.end = o.start.Add(dur)
		case start.date:
			o.end = o.start.AddDate(0, 0, 1)
		default:
			o.end = o.start
		}
		if o.end.Before(o.start) {
			o.end = o.start
		}
		o.test = testInterval
		if o.end.Equal(o.start) {
			o.test = testPoint
		}
	case ical.CompToDo:
		due, hasDue, err := p.prop(c, ical.PropDue)
		if err != nil {
			return o, err
		}
		completed, hasCompleted, err := p.prop(c, ical.PropCompleted)
		if err != nil {
			return o, err
		}
		created, hasCreated, err := p.prop(c, ical.PropCreated)
		if err != nil {
			return o, err
		}
		o.inexact = o.inexact || due.floating || completed.floating || created.floating
		switch {
		case hasStart && hasDur:
			o.end, o.test = o.start.Add(dur), testTodoDur
		case hasStart && hasDue:
			o.end, o.test = due.t, testTodoDue
		case hasStart:
			o.end, o.test = o.start, testPoint
		case hasDue:
			o.start, o.end, o.test, o.date = due.t, due.t, testDueOnly, due.date
		case hasCompleted && hasCreated:
			o.start, o.end, o.test = minTime(completed.t, created.t), maxTime(completed.t, created.t), testClosed
		case hasCompleted:
			o.start, o.end, o.test = completed.t, completed.t, testClosed
		case hasCreated:
			o.start, o.end, o.test = created.t, created.t, testAfter
		default:
			o.test = testAlways
		}
		if o.end.Before(o.start) {
			o.end = o.start
		}
	case ical.CompJournal:
		switch {
		case !hasStart:
			o.test = testNever
		case start.date:
			o.end, o.test = o.start.AddDate(0, 0, 1), testDay
		default:
			o.end, o.test = o.start, testPoint
		}
	default:
		o.test = testNever
	}
	return o, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// series is one calendar object's components of one type: the master (it
// may recur) and overrides of single instances (RECURRENCE-ID).
type series struct {
	master    *ical.Component
	overrides []*ical.Component
}

func seriesOf(comps []*ical.Component) series {
	var s series
	for _, c := range comps {
		if c.Props.Get(ical.PropRecurrenceID) != nil {
			s.overrides = append(s.overrides, c)
		} else if s.master == nil {
			s.master = c
		}
	}
	return s
}

// recurs reports whether the master has RRULE or RDATE.
func (s series) recurs() bool {
	return s.master != nil && (s.master.Props.Get(ical.PropRecurrenceRule) != nil || s.master.Props.Get(ical.PropRecurrenceDates) != nil)
}

// bounded reports whether the series ends: no RRULE, or one with COUNT or UNTIL.
func (s series) bounded() bool {
	if s.master == nil {
		return true
	}
	r := s.master.Props.Get(ical.PropRecurrenceRule)
	if r == nil {
		return true
	}
	v := strings.ToUpper(r.Value)
	return strings.Contains(v, "COUNT=") || strings.Contains(v, "UNTIL=")
}

// each calls fn for the occurrences of the series that start before until
// (zero: all of them), master instances in time order, then overrides.
// It stops early when fn returns false. Instances replaced by an override
// or excluded by EXDATE are skipped (RFC 5545, section 3.8.5). from is a
// hint: occurrences ending before it may be left out, which lets an
// endless rule start computing near the range asked for instead of at its
// DTSTART years ago.
func (p *parser) each(s series, from, until time.Time, fn func(occurrence) bool) (err error) {
	defer guard(&err)
	overridden := make(map[int64]bool)
	var overs []occurrence
	for _, c := range s.overrides {
		rid, _, err := p.prop(c, ical.PropRecurrenceID)
		if err != nil {
			return err
		}
		o, err := p.single(c)
		if err != nil {
			return err
		}
		o.recurID = rid.t
		overridden[rid.t.Unix()] = true
		overs = append(overs, o)
	}
	if s.master != nil {
		if err := p.eachMaster(s.master, from, until, overridden, fn); err != nil {
			if errors.Is(err, errStop) {
				return nil
			}
			return err
		}
	}
	for _, o := range overs {
		if !fn(o) {
			return nil
		}
	}
	return nil
}

var errStop = errors.New("stop")

func (p *parser) eachMaster(m *ical.Component, from, until time.Time, overridden map[int64]bool, fn func(occurrence) bool) error {
	base, err := p.single(m)
	if err != nil {
		return err
	}
	rr := m.Props.Get(ical.PropRecurrenceRule)
	rdates, rends, err := p.list(m, ical.PropRecurrenceDates)
	if err != nil {
		return err
	}
	if rr == nil && len(rdates) == 0 {
		if !fn(base) {
			return errStop
		}
		return nil
	}
	exdates, _, err := p.list(m, ical.PropExceptionDates)
	if err != nil {
		return err
	}
	excluded := make(map[int64]bool)
	excludedDays := make(map[string]bool)
	for _, x := range exdates {
		excluded[x.t.Unix()] = true
		if x.date {
			excludedDays[x.t.Format("20060102")] = true
		}
	}
	dur := base.end.Sub(base.start)
	emit := func(start time.Time, end time.Time) bool {
		u := start.Unix()
		if excluded[u] || excludedDays[start.Format("20060102")] || overridden[u] {
			return true
		}
		o := base
		o.start, o.end, o.recurID = start, end, start
		if end.IsZero() {
			o.end = start.Add(dur)
		}
		return fn(o)
	}
	// RDATEs, in order, merged with the RRULE's instances.
	type rdate struct{ start, end time.Time }
	extra := make([]rdate, 0, len(rdates)+1)
	extra = append(extra, rdate{start: base.start}) // DTSTART is always the first instance
	for i, r := range rdates {
		extra = append(extra, rdate{start: r.t, end: rends[i]})
	}
	slices.SortStableFunc(extra, func(a, b rdate) int { return a.start.Compare(b.start) })
	next := func() (time.Time, bool) { return time.Time{}, false }
	if rr != nil {
		opt, err := rrule.StrToROptionInLocation(rr.Value, base.start.Location())
		if err != nil {
			return fmt.Errorf("RRULE: %v", err)
		}
		opt.Dtstart = base.start
		if !from.IsZero() && opt.Count == 0 {
			opt.Dtstart = skipAhead(opt, base.start, from.Add(-dur))
		}
		rule, err := rrule.NewRRule(*opt)
		if err != nil {
			return fmt.Errorf("RRULE: %v", err)
		}
		next = rule.Iterator()
	}
	seen := make(map[int64]bool)
	rt, rok := next()
	for n := 0; ; n++ {
		if n > maxIterations {
			return errTooManyInstances
		}
		var start, end time.Time
		switch {
		case len(extra) > 0 && (!rok || !extra[0].start.After(rt)):
			start, end = extra[0].start, extra[0].end
			extra = extra[1:]
		case rok:
			start = rt
			rt, rok = next()
		default:
			return nil
		}
		if !until.IsZero() && !start.Before(until) {
			return nil
		}
		if seen[start.Unix()] {
			continue
		}
		seen[start.Unix()] = true
		if !emit(start, end) {
			return errStop
		}
	}
}

// skipAhead moves a rule's DTSTART forward by whole periods (in local
// wall time, so across DST too) to shortly before target, for rules whose
// instances repeat with the period: the instances from there on are the
// same. Rules with COUNT must not move (the count starts at DTSTART).
func skipAhead(opt *rrule.ROption, start, target time.Time) time.Time {
	if !target.After(start) {
		return start
	}
	interval := max(opt.Interval, 1)
	var k int
	switch opt.Freq {
	case rrule.DAILY, rrule.WEEKLY:
		days := interval
		if opt.Freq == rrule.WEEKLY {
			days *= 7
		}
		k = int(target.Sub(start).Hours()/24)/days - 1
		if k > 0 {
			return start.AddDate(0, 0, k*days)
		}
	case rrule.MONTHLY:
		if start.Day() > 28 {
			return start
		}
		months := (target.Year()-start.Year())*12 + int(target.Month()-start.Month())
		if k = months/interval - 1; k > 0 {
			return start.AddDate(0, k*interval, 0)
		}
	case rrule.YEARLY:
		if start.Month() == time.February && start.Day() == 29 {
			return start
		}
		if k = (target.Year()-start.Year())/interval - 1; k > 0 {
			return start.AddDate(k*interval, 0, 0)
		}
	}
	return start
}
