package caldav

import (
	"fmt"
	"strings"
	"sync"
	"time"

	ical "github.com/emersion/go-ical"
)

// zoneCache caches time zones by TZID: time.LoadLocation reads the zone
// database from disk each time. Unknown TZIDs are cached as nil. Bounded,
// so clients cannot grow it without limit.
type zoneCache struct {
	mu sync.Mutex
	m  map[string]*time.Location
}

func (z *zoneCache) load(tzid string) *time.Location {
	z.mu.Lock()
	loc, ok := z.m[tzid]
	z.mu.Unlock()
	if ok {
		return loc
	}
	loc = lookupZone(tzid)
	z.mu.Lock()
	if z.m == nil {
		z.m = make(map[string]*time.Location)
	}
	if len(z.m) < 2000 {
		z.m[tzid] = loc
	}
	z.mu.Unlock()
	return loc
}

// lookupZone finds an IANA zone for a TZID, also in the prefixed forms
// some clients write ("/mozilla.org/20050126_1/Europe/Berlin").
func lookupZone(tzid string) *time.Location {
	tzid = strings.Trim(tzid, `"`)
	for s := tzid; s != ""; {
		if !strings.HasPrefix(s, "/") && !strings.Contains(s, "..") {
			if loc, err := time.LoadLocation(s); err == nil && s != "Local" {
				return loc
			}
		}
		i := strings.IndexByte(s, '/')
		if i < 0 {
			break
		}
		s = s[i+1:]
	}
	return nil
}

// timeVal is a parsed DATE or DATE-TIME value.
type timeVal struct {
	t        time.Time
	date     bool // VALUE=DATE: an all-day value
	floating bool // no zone (or an unknown one): local time wherever it is seen
}

// parser interprets one calendar's times. Floating times (and DATE values)
// are read in float (the query's time zone, or UTC).
type parser struct {
	zones *zoneCache
	float *time.Location
	// fallback zones from the calendar's own VTIMEZONEs, for TZIDs the zone
	// database does not know (a fixed offset: approximate around DST).
	vtz map[string]*time.Location
}

func newParser(zones *zoneCache, float *time.Location, cal *ical.Calendar) *parser {
	if float == nil {
		float = time.UTC
	}
	p := &parser{zones: zones, float: float}
	for _, c := range cal.Children {
		if c.Name != ical.CompTimezone {
			continue
		}
		id, _ := c.Props.Text(ical.PropTimezoneID)
		for _, sub := range c.Children {
			if sub.Name != "STANDARD" {
				continue
			}
			if off := sub.Props.Get("TZOFFSETTO"); off != nil {
				if secs, ok := parseOffset(off.Value); ok {
					if p.vtz == nil {
						p.vtz = make(map[string]*time.Location)
					}
					p.vtz[id] = time.FixedZone(id, secs)
				}
			}
			break
		}
	}
	return p
}

func parseOffset(s string) (int, bool) {
	if len(s) != 5 && len(s) != 7 || (s[0] != '+' && s[0] != '-') {
		return 0, false
	}
	var h, m, sec int
	if _, err := fmt.Sscanf(s[1:3]+" "+s[3:5], "%d %d", &h, &m); err != nil {
		return 0, false
	}
	if len(s) == 7 {
		if _, err := fmt.Sscanf(s[5:], "%d", &sec); err != nil {
			return 0, false
		}
	}
	off := h*3600 + m*60 + sec
	if s[0] == '-' {
		off = -off
	}
	return off, off > -86400 && off < 86400
}

// zone returns the location of a TZID; floating is true when it is unknown.
func (p *parser) zone(tzid string) (*time.Location, bool) {
	if loc := p.zones.load(tzid); loc != nil {
		return loc, false
	}
	if loc, ok := p.vtz[tzid]; ok {
		return loc, true // approximate: treat as inexact like floating
	}
	return p.float, true
}

// value parses one DATE or DATE-TIME string with the property's params.
func (p *parser) value(s string, params ical.Params) (timeVal, error) {
	isDate := params.Get(ical.ParamValue) == string(ical.ValueDate) || len(s) == 8
	if isDate {
		t, err := time.ParseInLocation("20060102", s, p.float)
		return timeVal{t: t, date: true, floating: true}, err
	}
	if strings.HasSuffix(s, "Z") {
		t, err := time.ParseInLocation("20060102T150405Z", s, time.UTC)
		return timeVal{t: t}, err
	}
	loc, floating := p.float, true
	if tzid := params.Get(ical.PropTimezoneID); tzid != "" {
		loc, floating = p.zone(tzid)
	}
	t, err := time.ParseInLocation("20060102T150405", s, loc)
	return timeVal{t: t, floating: floating}, err
}

// prop parses a single-valued date property; ok is false when absent.
func (p *parser) prop(c *ical.Component, name string) (timeVal, bool, error) {
	pr := c.Props.Get(name)
	if pr == nil {
		return timeVal{}, false, nil
	}
	tv, err := p.value(strings.TrimSpace(pr.Value), pr.Params)
	if err != nil {
		return tv, true, fmt.Errorf("%s: %v", name, err)
	}
	return tv, true, nil
}

// list parses every value of a multi-valued date property (EXDATE, RDATE).
// RDATE periods ("start/end" or "start/duration") keep their end.
func (p *parser) list(c *ical.Component, name string) (starts []timeVal, ends []time.Time, err error) {
	for _, pr := range c.Props.Values(name) {
		for _, v := range strings.Split(pr.Value, ",") {
			v = strings.TrimSpace(v)
			if v == "" {
				continue
			}
			var end time.Time
			if i := strings.IndexByte(v, '/'); i >= 0 {
				tail := v[i+1:]
				v = v[:i]
				tv, err := p.value(v, pr.Params)
				if err != nil {
					return nil, nil, fmt.Errorf("%s: %v", name, err)
				}
				if strings.HasPrefix(tail, "P") || strings.HasPrefix(tail, "+P") || strings.HasPrefix(tail, "-P") {
					d, err := (&ical.Prop{Value: tail, Params: ical.Params{}}).Duration()
					if err != nil {
						return nil, nil, fmt.Errorf("%s: %v", name, err)
					}
					end = tv.t.Add(d)
				} else {
					et, err := p.value(tail, ical.Params{})
					if err != nil {
						return nil, nil, fmt.Errorf("%s: %v", name, err)
					}
					end = et.t
				}
				starts, ends = append(starts, tv), append(ends, end)
				continue
			}
			tv, err := p.value(v, pr.Params)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %v", name, err)
			}
			starts, ends = append(starts, tv), append(ends, time.Time{})
		}
	}
	return starts, ends, nil
}
