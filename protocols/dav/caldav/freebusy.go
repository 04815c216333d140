package caldav

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	ical "github.com/emersion/go-ical"

	"kreide/store"
)

type period struct{ start, end time.Time }

// freeBusy answers CALDAV:free-busy-query (RFC 4791, section 7.10): the
// busy times of the calendar's events in the range, as one VFREEBUSY.
// Transparent and cancelled events do not count; tentative ones are
// BUSY-TENTATIVE.
func (rq *request) freeBusy(w http.ResponseWriter, res *resource, body *node) error {
	if err := collectionFor(res, store.KindCalendar); err != nil {
		return err
	}
	if res.kind != resCollection {
		return precondition(http.StatusForbidden, nsDAV, "supported-report", "free-busy-query works on calendars")
	}
	tr := body.child(nsCal, "time-range")
	if tr == nil {
		return badRequest("free-busy-query needs a time-range")
	}
	start, end, derr := parseTimeRange(tr)
	if derr != nil {
		return derr
	}
	if start.IsZero() || end.IsZero() {
		return badRequest("free-busy-query needs start and end")
	}
	float := rq.floatZone(body, res.coll)
	var cands []*store.Object
	err := rq.a.ObjectsInRange(rq.ctx, res.coll.ID, store.RangeQuery{Component: store.CompEvent, Start: start, End: end},
		store.ObjectOptions{}, func(o *store.Object) error {
			cands = append(cands, o)
			return nil
		})
	if err != nil {
		return err
	}
	busy := map[string][]period{}
	err = rq.withData(res.coll.ID, cands, func(o *store.Object) error {
		cal, err := decodeCalendar(o.Data)
		if err != nil {
			return nil
		}
		var comps []*ical.Component
		for _, c := range cal.Children {
			if c.Name == ical.CompEvent {
				comps = append(comps, c)
			}
		}
		p := newParser(&rq.zones, float, cal)
		p.each(seriesOf(comps), start, end, func(oc occurrence) bool {
			if !oc.overlaps(start, end) || !oc.end.After(oc.start) {
				return true
			}
			fbtype := "BUSY"
			if t, _ := oc.comp.Props.Text(ical.PropTransparency); strings.EqualFold(t, "TRANSPARENT") {
				return true
			}
			switch s, _ := oc.comp.Props.Text(ical.PropStatus); strings.ToUpper(s) {
			case "CANCELLED":
				return true
			case "TENTATIVE":
				fbtype = "BUSY-TENTATIVE"
			}
			busy[fbtype] = append(busy[fbtype], period{maxTime(oc.start, start).UTC(), minTime(oc.end, end).UTC()})
			return true
		})
		return nil
	})
	if err != nil {
		return err
	}
	var b bytes.Buffer
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//kreide//CalDAV//EN\r\nBEGIN:VFREEBUSY\r\n")
	const f = "20060102T150405Z"
	b.WriteString("DTSTAMP:" + time.Now().UTC().Format(f) + "\r\n")
	b.WriteString("DTSTART:" + start.UTC().Format(f) + "\r\nDTEND:" + end.UTC().Format(f) + "\r\n")
	for _, t := range []string{"BUSY", "BUSY-TENTATIVE"} {
		for _, p := range merge(busy[t]) {
			b.WriteString("FREEBUSY;FBTYPE=" + t + ":" + p.start.Format(f) + "/" + p.end.Format(f) + "\r\n")
		}
	}
	b.WriteString("END:VFREEBUSY\r\nEND:VCALENDAR\r\n")
	w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(http.StatusOK)
	w.Write(b.Bytes())
	return nil
}

// merge joins overlapping and touching periods.
func merge(ps []period) []period {
	slices.SortFunc(ps, func(a, b period) int { return a.start.Compare(b.start) })
	var out []period
	for _, p := range ps {
		if n := len(out); n > 0 && !p.start.After(out[n-1].end) {
			out[n-1].end = maxTime(out[n-1].end, p.end)
			continue
		}
		out = append(out, p)
	}
	return out
}
