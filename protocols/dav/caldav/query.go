package caldav

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"time"

	ical "github.com/emersion/go-ical"
)

// compFilter is a CALDAV:comp-filter (RFC 4791, section 9.7.1).
type compFilter struct {
	name       string
	notDefined bool
	start, end time.Time // zero: unbounded
	hasRange   bool
	props      []propFilter
	comps      []compFilter
}

type propFilter struct {
	name       string
	notDefined bool
	start, end time.Time
	hasRange   bool
	text       *textMatch
	params     []paramFilter
}

type paramFilter struct {
	name       string
	notDefined bool
	text       *textMatch
}

type textMatch struct {
	text   string
	negate bool
	octet  bool // i;octet: case-sensitive; otherwise i;ascii-casemap
}

func invalidFilter(msg string) *davError {
	return precondition(http.StatusBadRequest, nsCal, "valid-filter", msg)
}

// parseUTC parses a time-range or expand attribute: UTC date-time.
func parseUTC(s string) (time.Time, error) {
	return time.Parse("20060102T150405Z", strings.TrimSpace(s))
}

func parseTimeRange(n *node) (start, end time.Time, err *davError) {
	s, hasStart := n.attr("start")
	e, hasEnd := n.attr("end")
	if !hasStart && !hasEnd {
		return start, end, invalidFilter("time-range needs start or end")
	}
	var perr error
	if hasStart {
		if start, perr = parseUTC(s); perr != nil {
			return start, end, invalidFilter("time-range start: " + perr.Error())
		}
	}
	if hasEnd {
		if end, perr = parseUTC(e); perr != nil {
			return start, end, invalidFilter("time-range end: " + perr.Error())
		}
	}
	if hasStart && hasEnd && !end.After(start) {
		return start, end, invalidFilter("time-range end must be after start")
	}
	return start, end, nil
}

func parseTextMatch(n *node) *textMatch {
	if n == nil {
		return nil
	}
	tm := &textMatch{text: n.text}
	if v, _ := n.attr("negate-condition"); v == "yes" {
		tm.negate = true
	}
	if v, _ := n.attr("collation"); v == "i;octet" {
		tm.octet = true
	}
	return tm
}

func (tm *textMatch) match(v string) bool {
	var ok bool
	if tm.octet {
		ok = strings.Contains(v, tm.text)
	} else {
		ok = strings.Contains(strings.ToLower(v), strings.ToLower(tm.text))
	}
	return ok != tm.negate
}

func parseCompFilter(n *node) (compFilter, *davError) {
	cf := compFilter{}
	cf.name, _ = n.attr("name")
	cf.name = strings.ToUpper(cf.name)
	if cf.name == "" {
		return cf, invalidFilter("comp-filter without name")
	}
	cf.notDefined = n.child(nsCal, "is-not-defined") != nil
	if tr := n.child(nsCal, "time-range"); tr != nil {
		var err *davError
		if cf.start, cf.end, err = parseTimeRange(tr); err != nil {
			return cf, err
		}
		cf.hasRange = true
	}
	for _, c := range n.all(nsCal, "prop-filter") {
		pf := propFilter{notDefined: c.child(nsCal, "is-not-defined") != nil, text: parseTextMatch(c.child(nsCal, "text-match"))}
		pf.name, _ = c.attr("name")
		pf.name = strings.ToUpper(pf.name)
		if tr := c.child(nsCal, "time-range"); tr != nil {
			var err *davError
			if pf.start, pf.end, err = parseTimeRange(tr); err != nil {
				return cf, err
			}
			pf.hasRange = true
		}
		for _, pn := range c.all(nsCal, "param-filter") {
			pa := paramFilter{notDefined: pn.child(nsCal, "is-not-defined") != nil, text: parseTextMatch(pn.child(nsCal, "text-match"))}
			pa.name, _ = pn.attr("name")
			pf.params = append(pf.params, pa)
		}
		cf.props = append(cf.props, pf)
	}
	for _, c := range n.all(nsCal, "comp-filter") {
		sub, err := parseCompFilter(c)
		if err != nil {
			return cf, err
		}
		cf.comps = append(cf.comps, sub)
	}
	return cf, nil
}

// simple reports whether the filter is "VCALENDAR > one component, maybe
// in a time range" and nothing else: the store's summaries answer it.
func (cf *compFilter) simple() (*compFilter, bool) {
	if len(cf.props) > 0 || len(cf.comps) != 1 || cf.hasRange || cf.notDefined {
		return nil, false
	}
	c := &cf.comps[0]
	return c, !c.notDefined && len(c.props) == 0 && len(c.comps) == 0
}

// candidate returns the component and time range the store can pre-filter
// on: the only comp-filter under VCALENDAR, if there is one.
func (cf *compFilter) candidate() (comp string, start, end time.Time) {
	if len(cf.comps) != 1 || cf.comps[0].notDefined {
		return "", time.Time{}, time.Time{}
	}
	c := cf.comps[0]
	return c.name, c.start, c.end
}

// matchCalendar evaluates a filter on a parsed calendar object.
func matchCalendar(cf *compFilter, p *parser, cal *ical.Calendar) bool {
	if cf.name != ical.CompCalendar {
		return cf.notDefined
	}
	if cf.notDefined {
		return false
	}
	for i := range cf.props {
		if !matchProp(&cf.props[i], p, cal.Props) {
			return false
		}
	}
	for i := range cf.comps {
		if !matchComps(&cf.comps[i], p, cal.Children, true) {
			return false
		}
	}
	return true
}

// matchComps evaluates a comp-filter against the children of a component.
// At the top level (children of VCALENDAR) a time range is tested against
// every occurrence of the recurring series, with overrides in place of the
// instances they replace; filters on properties then apply to the
// component the matching occurrence comes from.
func matchComps(f *compFilter, p *parser, children []*ical.Component, top bool) bool {
	var comps []*ical.Component
	for _, c := range children {
		if c.Name == f.name {
			comps = append(comps, c)
		}
	}
	if f.notDefined {
		return len(comps) == 0
	}
	if len(comps) == 0 {
		return false
	}
	inner := func(c *ical.Component) bool {
		for i := range f.props {
			if !matchProp(&f.props[i], p, c.Props) {
				return false
			}
		}
		for i := range f.comps {
			if !matchComps(&f.comps[i], p, c.Children, false) {
				return false
			}
		}
		return true
	}
	if !f.hasRange || !top {
		// Nested time ranges (VALARM) are not evaluated: the component
		// matches if it exists, a superset of the RFC's answer.
		return slices.ContainsFunc(comps, inner)
	}
	matched := false
	err := p.each(seriesOf(comps), f.start, f.end, func(o occurrence) bool {
		if o.overlaps(f.start, f.end) && inner(o.comp) {
			matched = true
			return false
		}
		return true
	})
	return matched && err == nil
}

func matchProp(f *propFilter, p *parser, props ical.Props) bool {
	values := props.Values(f.name)
	if f.notDefined {
		return len(values) == 0
	}
	for i := range values {
		if propMatches(f, p, &values[i]) {
			return true
		}
	}
	return false
}

func propMatches(f *propFilter, p *parser, pr *ical.Prop) bool {
	if f.hasRange {
		tv, err := p.value(strings.TrimSpace(pr.Value), pr.Params)
		if err != nil {
			return false
		}
		if !(&occurrence{start: tv.t, end: tv.t, test: testPoint}).overlaps(f.start, f.end) {
			return false
		}
	}
	if f.text != nil {
		v := pr.Value
		if t, err := pr.Text(); err == nil {
			v = t
		}
		if !f.text.match(v) {
			return false
		}
	}
	for _, pa := range f.params {
		vals := pr.Params.Values(pa.name)
		if pa.notDefined {
			if len(vals) > 0 {
				return false
			}
			continue
		}
		if len(vals) == 0 || (pa.text != nil && !slices.ContainsFunc(vals, pa.text.match)) {
			return false
		}
	}
	return true
}

// calDataReq is a CALDAV:calendar-data element in a REPORT's prop
// (RFC 4791, section 9.6): expand recurrences, and/or return only some
// components and properties.
type calDataReq struct {
	expand           bool
	expandStart, end time.Time
	comp             *compReq
}

type compReq struct {
	name     string
	allProps bool
	props    []string
	allComps bool
	comps    []*compReq
}

func parseCalDataReq(n *node) (*calDataReq, *davError) {
	if n == nil {
		return nil, nil
	}
	if ct, ok := n.attr("content-type"); ok && !strings.EqualFold(ct, "text/calendar") {
		return nil, precondition(http.StatusForbidden, nsCal, "supported-calendar-data", "only text/calendar")
	}
	req := &calDataReq{}
	if ex := n.child(nsCal, "expand"); ex != nil {
		start, end, err := parseTimeRange(ex)
		if err != nil || start.IsZero() || end.IsZero() {
			return nil, badRequest("expand needs start and end")
		}
		req.expand, req.expandStart, req.end = true, start, end
	}
	if c := n.child(nsCal, "comp"); c != nil {
		req.comp = parseCompReq(c)
		if req.comp.allProps && req.comp.allComps {
			req.comp = nil // everything: the stored bytes, untouched
		}
	}
	return req, nil
}

func parseCompReq(n *node) *compReq {
	cr := &compReq{allProps: n.child(nsCal, "allprop") != nil, allComps: n.child(nsCal, "allcomp") != nil}
	cr.name, _ = n.attr("name")
	cr.name = strings.ToUpper(cr.name)
	for _, p := range n.all(nsCal, "prop") {
		v, _ := p.attr("name")
		cr.props = append(cr.props, strings.ToUpper(v))
	}
	for _, c := range n.all(nsCal, "comp") {
		cr.comps = append(cr.comps, parseCompReq(c))
	}
	if len(cr.props) == 0 && n.child(nsCal, "allprop") == nil && len(n.children) == 0 {
		cr.allProps, cr.allComps = true, true
	}
	return cr
}

// render produces the calendar-data for one object: the stored bytes when
// nothing is to be changed, else an expanded and/or trimmed calendar.
func (req *calDataReq) render(data []byte, zones *zoneCache, float *time.Location) []byte {
	if req == nil || (!req.expand && req.comp == nil) {
		return data
	}
	cal, err := decodeCalendar(data)
	if err != nil {
		return data
	}
	c := cal.Component
	if req.expand {
		c = expandCalendar(cal, newParser(zones, float, cal), req.expandStart, req.end)
	}
	if req.comp != nil {
		c = trim(c, req.comp)
	}
	var b bytes.Buffer
	encodeCalendar(&b, c)
	return b.Bytes()
}

// expandCalendar replaces recurring components by their instances in
// [start, end), in UTC, each with its RECURRENCE-ID (RFC 4791, 9.6.5).
func expandCalendar(cal *ical.Calendar, p *parser, start, end time.Time) *ical.Component {
	out := &ical.Component{Name: cal.Name, Props: cal.Props}
	var comps []*ical.Component
	for _, c := range cal.Children {
		if c.Name != ical.CompTimezone {
			comps = append(comps, c)
		}
	}
	s := seriesOf(comps)
	recurs := s.recurs() || len(s.overrides) > 0
	p.each(s, start, end, func(o occurrence) bool {
		if !o.overlaps(start, end) {
			return true
		}
		out.Children = append(out.Children, instanceOf(o, recurs))
		return true
	})
	return out
}

func instanceOf(o occurrence, recurs bool) *ical.Component {
	c := o.comp
	props := make(ical.Props, len(c.Props))
	for k, v := range c.Props {
		props[k] = slices.Clone(v)
	}
	for _, k := range []string{ical.PropRecurrenceRule, ical.PropRecurrenceDates, ical.PropExceptionDates, "EXRULE"} {
		delete(props, k)
	}
	setTime := func(name string, t time.Time) {
		p := ical.NewProp(name)
		if o.date {
			p.Params.Set(ical.ParamValue, string(ical.ValueDate))
			p.Value = t.Format("20060102")
		} else {
			p.Value = t.UTC().Format("20060102T150405Z")
		}
		props.Set(p)
	}
	if props.Get(ical.PropDateTimeStart) != nil {
		setTime(ical.PropDateTimeStart, o.start)
		switch {
		case props.Get(ical.PropDateTimeEnd) != nil:
			setTime(ical.PropDateTimeEnd, o.end)
		case props.Get(ical.PropDue) != nil:
			setTime(ical.PropDue, o.end)
		}
	}
	if recurs {
		setTime(ical.PropRecurrenceID, o.recurID)
		if o.recurID.IsZero() {
			setTime(ical.PropRecurrenceID, o.start)
		}
	}
	return &ical.Component{Name: c.Name, Props: props, Children: c.Children}
}

// trim keeps the components and properties a calendar-data comp element
// asks for.
func trim(c *ical.Component, req *compReq) *ical.Component {
	if req.name != "" && req.name != c.Name {
		return c
	}
	out := &ical.Component{Name: c.Name, Props: c.Props}
	if !req.allProps {
		out.Props = make(ical.Props)
		for _, n := range req.props {
			if v, ok := c.Props[n]; ok {
				out.Props[n] = v
			}
		}
	}
	for _, ch := range c.Children {
		if req.allComps {
			out.Children = append(out.Children, ch)
			continue
		}
		for _, sub := range req.comps {
			if sub.name == ch.Name {
				out.Children = append(out.Children, trim(ch, sub))
				break
			}
		}
	}
	return out
}
