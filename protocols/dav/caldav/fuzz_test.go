package caldav

import (
	"testing"
	"time"
)

// FuzzXML: request bodies never panic the parser, whatever they are.
func FuzzXML(f *testing.F) {
	for _, s := range []string{
		`<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>`,
		`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>`,
		`<d:propertyupdate xmlns:d="DAV:" xmlns:x="urn:x"><d:set><d:prop><x:a x:b="c">t<x:d/>u</x:a></d:prop></d:set></d:propertyupdate>`,
		calQuery("<d:getetag/>", timeRangeFilter("VEVENT", "20250101T000000Z", "20250201T000000Z")),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := parseXML(b)
		if err != nil {
			return
		}
		for _, c := range n.children {
			c.fragment()
		}
		if fn := n.child(nsCal, "filter"); fn != nil {
			if cf := fn.child(nsCal, "comp-filter"); cf != nil {
				parseCompFilter(cf)
			}
		}
		pr := parsePropRequest(n)
		parseCalDataReq(pr.elems[pCalData])
		parseCardFilter(n.child(nsCard, "filter"))
	})
}

// FuzzCalendar: iCalendar data is validated, indexed, matched, expanded
// and rendered without panics, and anything accepted can be summarised.
func FuzzCalendar(f *testing.F) {
	f.Add([]byte(timetable))
	f.Add([]byte(choir))
	f.Add([]byte(rdate))
	f.Add([]byte(allDay))
	f.Add([]byte(ics("BEGIN:VTODO", "UID:t", "DTSTART:20250901T080000Z", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=3", "END:VTODO")))
	cf, _ := parseCompFilter(mustNode(timeRangeFilter("VEVENT", "20250901T000000Z", "20251001T000000Z")))
	zones := &zoneCache{}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, derr := parseCalObject(b, zones)
		if derr != nil {
			return
		}
		o.summary(zones)
		p := newParser(zones, time.UTC, o.cal)
		matchCalendar(&cf, p, o.cal)
		req := &calDataReq{expand: true, expandStart: time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC), end: time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC),
			comp: &compReq{name: "VCALENDAR", allProps: true, allComps: true}}
		req.render(b, zones, time.UTC)
	})
}

// FuzzVCard: contacts are validated and trimmed without panics.
func FuzzVCard(f *testing.F) {
	f.Add([]byte(vcardText("a", "Anna", "TEL;TYPE=cell:123", "item1.EMAIL:a@example.org")))
	f.Fuzz(func(t *testing.T, b []byte) {
		card, err := parseVCard(b)
		if err != nil {
			return
		}
		filter := parseCardFilter(mustNode(`<c:filter xmlns:c="urn:ietf:params:xml:ns:carddav"><c:prop-filter name="FN"><c:text-match>a</c:text-match></c:prop-filter></c:filter>`))
		filter.match(card)
		(&cardDataReq{props: []string{"FN", "EMAIL"}}).render(b)
	})
}

func mustNode(s string) *node {
	n, err := parseXML([]byte(`<c:x xmlns:c="urn:ietf:params:xml:ns:caldav">` + s + `</c:x>`))
	if err != nil {
		panic(err)
	}
	if len(n.children) == 1 {
		return n.children[0]
	}
	return n
}
