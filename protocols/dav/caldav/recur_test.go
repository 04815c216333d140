package caldav

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"kreide/store"
)

func mustCal(t testing.TB, data string) *calObject {
	t.Helper()
	o, err := parseCalObject([]byte(data), &zoneCache{})
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return o
}

// starts lists the occurrence starts (UTC) in [from, until).
func starts(t testing.TB, o *calObject, from, until time.Time) []string {
	t.Helper()
	p := newParser(&zoneCache{}, time.UTC, o.cal)
	var out []string
	err := p.each(seriesOf(o.comps), from, until, func(oc occurrence) bool {
		if oc.overlaps(from, until) {
			out = append(out, oc.start.UTC().Format("2006-01-02T15:04"))
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func day(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestOccurrences(t *testing.T) {
	for _, tc := range []struct {
		name       string
		lines      []string
		from, to   string
		want       []string
		wantExact  bool
		wantEndSet bool
	}{
		{"single", vevent("a", "x", ":20250901T080000Z", ":20250901T090000Z"), "2025-09-01", "2025-09-02",
			[]string{"2025-09-01T08:00"}, true, true},
		{"weekly across DST in Berlin", vevent("b", "x", ";TZID=Europe/Berlin:20251020T080000", ";TZID=Europe/Berlin:20251020T084500", "RRULE:FREQ=WEEKLY;COUNT=3"),
			"2025-10-01", "2025-12-01", []string{"2025-10-20T06:00", "2025-10-27T07:00", "2025-11-03T07:00"}, false, true},
		{"EXDATE list and RDATE period", vevent("c", "x", ":20250901T080000Z", ":20250901T090000Z", "RRULE:FREQ=DAILY;COUNT=5",
			"EXDATE:20250902T080000Z,20250904T080000Z", "RDATE;VALUE=PERIOD:20250910T120000Z/PT2H"),
			"2025-09-01", "2025-09-30", []string{"2025-09-01T08:00", "2025-09-03T08:00", "2025-09-05T08:00", "2025-09-10T12:00"}, false, true},
		{"DTSTART not matching the rule counts", vevent("d", "x", ":20250902T080000Z", ":20250902T090000Z", "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=2"),
			"2025-09-01", "2025-09-30", []string{"2025-09-02T08:00", "2025-09-08T08:00", "2025-09-15T08:00"}, false, true},
		{"all-day with EXDATE as date", vevent("e", "x", ";VALUE=DATE:20250901", ";VALUE=DATE:20250902", "RRULE:FREQ=DAILY;UNTIL=20250904", "EXDATE;VALUE=DATE:20250903"),
			"2025-08-01", "2025-10-01", []string{"2025-09-01T00:00", "2025-09-02T00:00", "2025-09-04T00:00"}, false, true},
		{"monthly endless", vevent("f", "x", ":20250115T100000Z", ":20250115T110000Z", "RRULE:FREQ=MONTHLY"),
			"2030-03-01", "2030-05-01", []string{"2030-03-15T10:00", "2030-04-15T10:00"}, false, false},
		{"Mozilla TZID prefix", vevent("g", "x", ";TZID=/mozilla.org/20050126_1/Europe/Berlin:20250901T080000", ";TZID=/mozilla.org/20050126_1/Europe/Berlin:20250901T090000"),
			"2025-09-01", "2025-09-02", []string{"2025-09-01T06:00"}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := mustCal(t, ics(tc.lines...))
			if got := starts(t, o, day(tc.from), day(tc.to)); !slices.Equal(got, tc.want) {
				t.Errorf("occurrences %v, want %v", got, tc.want)
			}
			sum := o.summary(&zoneCache{})
			if sum.Exact != tc.wantExact || sum.End.IsZero() == tc.wantEndSet || sum.Start.IsZero() {
				t.Errorf("summary %+v", sum)
			}
			// The summary contains every occurrence.
			for _, s := range starts(t, o, time.Time{}, day("2031-01-01")) {
				st, _ := time.Parse("2006-01-02T15:04", s)
				if st.Before(sum.Start) || (!sum.End.IsZero() && st.After(sum.End)) {
					t.Errorf("occurrence %s outside summary %+v", s, sum)
				}
			}
		})
	}
}

// TestSkipAheadSameResults: starting an endless rule near the range gives
// the same occurrences as computing it from DTSTART.
func TestSkipAheadSameResults(t *testing.T) {
	rules := []string{
		"FREQ=DAILY", "FREQ=DAILY;INTERVAL=3", "FREQ=WEEKLY", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR",
		"FREQ=WEEKLY;BYDAY=TU,TH;WKST=SU", "FREQ=MONTHLY;BYDAY=-1FR", "FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=1,15",
		"FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", "FREQ=WEEKLY;UNTIL=20291231T000000Z", "FREQ=DAILY;BYHOUR=8,14",
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, rule := range rules {
		for i := range 8 {
			start := time.Date(2020+r.IntN(3), time.Month(1+r.IntN(12)), 1+r.IntN(28), 6+r.IntN(10), 0, 0, 0, time.UTC)
			o := mustCal(t, ics(vevent("s", "x", ";TZID=Europe/Berlin:"+start.Format("20060102T150405"),
				";TZID=Europe/Berlin:"+start.Add(90*time.Minute).Format("20060102T150405"), "RRULE:"+rule)...))
			from := start.AddDate(0, 0, 30+r.IntN(2000))
			until := from.AddDate(0, 0, 1+r.IntN(40))
			p := newParser(&zoneCache{}, time.UTC, o.cal)
			var full, skipped []string
			p.each(seriesOf(o.comps), time.Time{}, until, func(oc occurrence) bool {
				if oc.overlaps(from, until) {
					full = append(full, oc.start.UTC().String())
				}
				return true
			})
			p.each(seriesOf(o.comps), from, until, func(oc occurrence) bool {
				if oc.overlaps(from, until) {
					skipped = append(skipped, oc.start.UTC().String())
				}
				return true
			})
			if !slices.Equal(full, skipped) {
				t.Errorf("%s #%d from %v: full %v, skipped %v", rule, i, from, full, skipped)
			}
		}
	}
}

func TestTodoSummaries(t *testing.T) {
	todo := func(props ...string) store.ObjectSummary {
		lines := append([]string{"BEGIN:VTODO", "UID:t", "DTSTAMP:20250801T000000Z"}, props...)
		return mustCal(t, ics(append(lines, "END:VTODO")...)).summary(&zoneCache{})
	}
	if s := todo(); !s.Start.IsZero() || !s.End.IsZero() {
		t.Errorf("undated task must be unbounded: %+v", s)
	}
	if s := todo("CREATED:20250101T000000Z"); s.Start.IsZero() || !s.End.IsZero() {
		t.Errorf("created-only task is open-ended: %+v", s)
	}
	if s := todo("DUE:20250920T120000Z"); !s.Start.Equal(s.End) || s.Exact {
		t.Errorf("due-only task: %+v", s)
	}
}

func TestTooManyInstances(t *testing.T) {
	o := mustCal(t, ics(vevent("m", "x", ":20000101T000000Z", ":20000101T000001Z", "RRULE:FREQ=SECONDLY;COUNT=1000000")...))
	sum := o.summary(&zoneCache{})
	if !sum.Start.IsZero() || !sum.End.IsZero() {
		t.Errorf("a rule beyond the limit is indexed as unbounded: %+v", sum)
	}
	p := newParser(&zoneCache{}, time.UTC, o.cal)
	err := p.each(seriesOf(o.comps), time.Time{}, time.Time{}, func(occurrence) bool { return true })
	if err != errTooManyInstances {
		t.Errorf("each: %v", err)
	}
}
