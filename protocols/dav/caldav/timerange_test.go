package caldav

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	wcaldav "github.com/emersion/go-webdav/caldav"
)

// A weekly timetable lesson: Mondays 08:00-08:45 in Berlin from 1 Sept
// 2025 to the Christmas holidays, no lesson on 20 Oct (autumn holidays),
// and the lesson of 15 Sept moved to Wednesday 17 Sept 10:00. It crosses
// the end of summer time (26 Oct).
var timetable = ics(
	"BEGIN:VTIMEZONE", "TZID:Europe/Berlin",
	"BEGIN:STANDARD", "DTSTART:19701025T030000", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100", "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU", "END:STANDARD",
	"BEGIN:DAYLIGHT", "DTSTART:19700329T020000", "TZOFFSETFROM:+0100", "TZOFFSETTO:+0200", "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", "END:DAYLIGHT",
	"END:VTIMEZONE",
	"BEGIN:VEVENT", "UID:mathe-7b", "DTSTAMP:20250801T000000Z", "SUMMARY:Mathe 7b",
	"DTSTART;TZID=Europe/Berlin:20250901T080000", "DTEND;TZID=Europe/Berlin:20250901T084500",
	"RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20251219T230000Z", "EXDATE;TZID=Europe/Berlin:20251020T080000", "END:VEVENT",
	"BEGIN:VEVENT", "UID:mathe-7b", "DTSTAMP:20250801T000000Z", "SUMMARY:Mathe 7b (verlegt)",
	"RECURRENCE-ID;TZID=Europe/Berlin:20250915T080000",
	"DTSTART;TZID=Europe/Berlin:20250917T100000", "DTEND;TZID=Europe/Berlin:20250917T104500", "END:VEVENT",
)

// An endless weekly event and two single ones.
var (
	choir  = ics(vevent("chor", "Schulchor", ";TZID=Europe/Berlin:20250902T133000", ";TZID=Europe/Berlin:20250902T150000", "RRULE:FREQ=WEEKLY")...)
	single = ics(vevent("konferenz", "Konferenz", ":20250916T140000Z", ":20250916T160000Z")...)
	allDay = ics(vevent("wandertag", "Wandertag", ";VALUE=DATE:20250924", ";VALUE=DATE:20250925")...)
	rdate  = ics(vevent("sprechtag", "Elternsprechtag", ":20251105T150000Z", ":20251105T180000Z", "RDATE:20260211T150000Z,20260415T150000Z")...)
)

func setupTimetable(t *testing.T) *env {
	e := newEnv(t)
	for name, body := range map[string]string{"mathe.ics": timetable, "chor.ics": choir, "konferenz.ics": single, "wandertag.ics": allDay, "sprechtag.ics": rdate} {
		e.put(annaCal+name, icsType, body, nil).expect(t, http.StatusCreated)
	}
	return e
}

func TestTimeRangeRecurrences(t *testing.T) {
	e := setupTimetable(t)
	cc := e.caldav(anna, annaPass)
	query := func(start, end string) []string {
		t.Helper()
		s, _ := time.Parse(time.RFC3339, start)
		en, _ := time.Parse(time.RFC3339, end)
		objs, err := cc.QueryCalendar(ctx, annaCal, &wcaldav.CalendarQuery{
			CompRequest: wcaldav.CalendarCompRequest{Name: "VCALENDAR", AllProps: true, AllComps: true},
			CompFilter:  wcaldav.CompFilter{Name: "VCALENDAR", Comps: []wcaldav.CompFilter{{Name: "VEVENT", Start: s, End: en}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range objs {
			out = append(out, strings.TrimPrefix(o.Path, annaCal))
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		name, start, end string
		want             []string
	}{
		{"first Monday", "2025-09-01T00:00:00Z", "2025-09-02T00:00:00Z", []string{"mathe.ics"}},
		{"Tuesday: only the choir", "2025-09-02T00:00:00Z", "2025-09-03T00:00:00Z", []string{"chor.ics"}},
		{"moved away from Monday 15th", "2025-09-15T00:00:00Z", "2025-09-16T00:00:00Z", nil},
		{"moved to Wednesday 17th", "2025-09-17T07:00:00Z", "2025-09-17T09:00:00Z", []string{"mathe.ics"}},
		{"Tuesday 16th", "2025-09-16T00:00:00Z", "2025-09-17T00:00:00Z", []string{"chor.ics", "konferenz.ics"}},
		{"holiday Monday (EXDATE)", "2025-10-20T00:00:00Z", "2025-10-21T00:00:00Z", nil},
		{"after summer time, 07:00Z", "2025-10-27T07:00:00Z", "2025-10-27T07:30:00Z", []string{"mathe.ics"}},
		{"after summer time, not 06:00Z", "2025-10-27T06:00:00Z", "2025-10-27T07:00:00Z", nil},
		{"after UNTIL", "2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z", nil},
		{"endless choir in 2030", "2030-01-01T00:00:00Z", "2030-01-08T00:00:00Z", []string{"chor.ics"}},
		{"all-day event", "2025-09-24T10:00:00Z", "2025-09-24T11:00:00Z", []string{"wandertag.ics"}},
		{"RDATE instance", "2026-02-11T00:00:00Z", "2026-02-12T00:00:00Z", []string{"sprechtag.ics"}},
		{"between RDATEs", "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z", nil},
		{"between choir and conference: ends and starts are exclusive", "2025-09-16T13:00:00Z", "2025-09-16T14:00:00Z", nil},
		{"start is exclusive of the end", "2025-09-16T16:00:00Z", "2025-09-16T17:00:00Z", nil},
	} {
		if got := query(tc.start, tc.end); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestExpand(t *testing.T) {
	e := setupTimetable(t)
	body := calQuery(`<d:getetag/><c:calendar-data><c:expand start="20250908T000000Z" end="20250922T000000Z"/></c:calendar-data>`,
		timeRangeFilter("VEVENT", "20250908T000000Z", "20250922T000000Z"))
	r := e.do("REPORT", annaCal, map[string]string{"Depth": "1"}, body)
	r.expect(t, http.StatusMultiStatus)
	mathe := r.body[strings.Index(r.body, "mathe.ics"):]
	mathe = mathe[:strings.Index(mathe, "</d:response>")]
	// Two instances: 8 Sept as planned, 15 Sept moved to the 17th; in UTC
	// with RECURRENCE-IDs, without RRULE or EXDATE.
	for _, want := range []string{"DTSTART:20250908T060000Z", "RECURRENCE-ID:20250908T060000Z", "DTSTART:20250917T080000Z",
		"RECURRENCE-ID:20250915T060000Z", "SUMMARY:Mathe 7b (verlegt)"} {
		if !strings.Contains(mathe, want) {
			t.Errorf("expanded timetable lacks %s:\n%s", want, mathe)
		}
	}
	if strings.Count(mathe, "BEGIN:VEVENT") != 2 || strings.Contains(mathe, "RRULE") || strings.Contains(mathe, "EXDATE") {
		t.Errorf("expanded timetable:\n%s", mathe)
	}
	if !strings.Contains(r.body, "chor.ics") || strings.Count(r.body, "SUMMARY:Schulchor") != 2 {
		t.Errorf("expanded choir: two Tuesdays expected:\n%s", r.body)
	}
}

func TestTodoTimeRange(t *testing.T) {
	e := newEnv(t)
	todos := map[string][]string{
		"due.ics":       {"DUE:20250920T120000Z"},
		"start-due.ics": {"DTSTART:20250910T080000Z", "DUE:20250912T080000Z"},
		"undated.ics":   nil,
		"done.ics":      {"COMPLETED:20250801T100000Z"},
		"weekly.ics":    {"DTSTART:20250901T080000Z", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;COUNT=4"},
	}
	for name, props := range todos {
		lines := append([]string{"BEGIN:VTODO", "UID:" + name, "DTSTAMP:20250801T000000Z", "SUMMARY:" + name}, props...)
		e.put(annaTasks+name, icsType, ics(append(lines, "END:VTODO")...), nil).expect(t, http.StatusCreated)
	}
	for _, tc := range []struct {
		start, end string
		want       []string
	}{
		{"20250920T000000Z", "20250921T000000Z", []string{"due.ics", "undated.ics"}},
		{"20250911T000000Z", "20250912T000000Z", []string{"start-due.ics", "undated.ics"}},
		{"20250801T000000Z", "20250802T000000Z", []string{"done.ics", "undated.ics"}},
		{"20250915T000000Z", "20250916T000000Z", []string{"undated.ics", "weekly.ics"}},
		{"20251006T000000Z", "20251007T000000Z", []string{"undated.ics"}}, // COUNT=4 ended
	} {
		r := e.do("REPORT", annaTasks, map[string]string{"Depth": "1"}, calQuery("<d:getetag/>", timeRangeFilter("VTODO", tc.start, tc.end)))
		var got []string
		for _, h := range hrefs(r.body) {
			got = append(got, strings.TrimPrefix(h, annaTasks))
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s..%s: got %v, want %v", tc.start, tc.end, got, tc.want)
		}
	}
}

func TestQueryFilters(t *testing.T) {
	e := setupTimetable(t)
	q := func(filter string) []string {
		t.Helper()
		r := e.do("REPORT", annaCal, map[string]string{"Depth": "1"}, calQuery("<d:getetag/>", filter))
		r.expect(t, http.StatusMultiStatus)
		var out []string
		for _, h := range hrefs(r.body) {
			out = append(out, strings.TrimPrefix(h, annaCal))
		}
		slices.Sort(out)
		return out
	}
	all := []string{"chor.ics", "konferenz.ics", "mathe.ics", "sprechtag.ics", "wandertag.ics"}
	if got := q(`<c:comp-filter name="VCALENDAR"/>`); !slices.Equal(got, all) {
		t.Errorf("all: %v", got)
	}
	if got := q(`<c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"/></c:comp-filter>`); !slices.Equal(got, all) {
		t.Errorf("all events: %v", got)
	}
	if got := q(`<c:comp-filter name="VCALENDAR"><c:comp-filter name="VTODO"/></c:comp-filter>`); len(got) != 0 {
		t.Errorf("no tasks here: %v", got)
	}
	text := `<c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"><c:prop-filter name="SUMMARY"><c:text-match>MATHE</c:text-match></c:prop-filter></c:comp-filter></c:comp-filter>`
	if got := q(text); !slices.Equal(got, []string{"mathe.ics"}) {
		t.Errorf("text-match: %v", got)
	}
	neg := strings.Replace(text, "<c:text-match>", `<c:text-match negate-condition="yes">`, 1)
	if got := q(neg); slices.Contains(got, "konferenz.ics") == false {
		t.Errorf("negated text-match: %v", got)
	}
	rrule := `<c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"><c:prop-filter name="RRULE"><c:is-not-defined/></c:prop-filter></c:comp-filter></c:comp-filter>`
	if got := q(rrule); !slices.Contains(got, "konferenz.ics") || slices.Contains(got, "chor.ics") {
		t.Errorf("is-not-defined: %v", got)
	}
	// A query on one object.
	r := e.do("REPORT", annaCal+"konferenz.ics", map[string]string{"Depth": "0"}, calQuery("<d:getetag/>", timeRangeFilter("VEVENT", "20250916T000000Z", "20250917T000000Z")))
	if h := hrefs(r.body); len(h) != 1 {
		t.Errorf("query on an object: %s", r.body)
	}
	e.do("REPORT", annaCal, nil, calQuery("<d:getetag/>", timeRangeFilter("VEVENT", "2025-09-16", "20250917T000000Z"))).
		expect(t, http.StatusBadRequest, "valid-filter")
}

func TestFreeBusy(t *testing.T) {
	e := setupTimetable(t)
	e.put(annaCal+"frei.ics", icsType, ics(vevent("frei", "Frei", ":20250916T070000Z", ":20250916T080000Z", "TRANSP:TRANSPARENT")...), nil).expect(t, http.StatusCreated)
	e.put(annaCal+"vielleicht.ics", icsType, ics(vevent("vielleicht", "?", ":20250916T150000Z", ":20250916T170000Z", "STATUS:TENTATIVE")...), nil).expect(t, http.StatusCreated)
	body := `<c:free-busy-query xmlns:c="urn:ietf:params:xml:ns:caldav"><c:time-range start="20250916T000000Z" end="20250917T000000Z"/></c:free-busy-query>`
	r := e.do("REPORT", annaCal, map[string]string{"Depth": "1"}, body)
	r.expect(t, http.StatusOK, "BEGIN:VFREEBUSY",
		"FREEBUSY;FBTYPE=BUSY:20250916T113000Z/20250916T130000Z", // the choir, 13:30-15:00 in Berlin
		"FREEBUSY;FBTYPE=BUSY:20250916T140000Z/20250916T160000Z", // the conference
		"FREEBUSY;FBTYPE=BUSY-TENTATIVE:20250916T150000Z/20250916T170000Z")
	if strings.Contains(r.body, "T070000Z") {
		t.Errorf("transparent event counted:\n%s", r.body)
	}
}
