package caldav

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"kreide/protocols/dav/davauth"
	"kreide/store"
	"kreide/store/storetest"
)

// benchCalendar is a calendar of 10,000 events: 9,000 single ones spread
// over four school years and 1,000 weekly series (half of them endless,
// with exceptions), stored through the store with the summaries the
// handler computes.
type benchCalendar struct {
	a    *store.Account
	coll store.Collection
	h    http.Handler
}

const benchEvents = 10000

func newBenchCalendar(b *testing.B) *benchCalendar {
	b.Helper()
	d := storetest.Open(b)
	a, _ := storetest.User(b, d, "bench@example.org", "bench password")
	coll, err := a.CollectionBySlug(ctx, store.KindCalendar, "calendar")
	if err != nil {
		b.Fatal(err)
	}
	h := NewHandler(Options{Prefix: "/dav/"}).(*Handler)
	base := time.Date(2023, 8, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	jobs := make(chan int)
	var mu sync.Mutex
	var firstErr error
	for range 32 {
		wg.Go(func() {
			for i := range jobs {
				var body string
				start := base.Add(time.Duration(i*37%(4*365*24)) * time.Hour)
				f := "20060102T150405Z"
				if i%10 == 0 {
					extra := []string{"RRULE:FREQ=WEEKLY;COUNT=40", "EXDATE:" + start.AddDate(0, 0, 14).Format(f)}
					if i%20 == 0 {
						extra = []string{"RRULE:FREQ=WEEKLY", "EXDATE:" + start.AddDate(0, 0, 7).Format(f)}
					}
					body = ics(vevent(fmt.Sprint("e", i), fmt.Sprint("Serie ", i), ";TZID=Europe/Berlin:"+start.Format("20060102T150405"),
						";TZID=Europe/Berlin:"+start.Add(45*time.Minute).Format("20060102T150405"), extra...)...)
				} else {
					body = ics(vevent(fmt.Sprint("e", i), fmt.Sprint("Termin ", i), ":"+start.Format(f), ":"+start.Add(time.Hour).Format(f))...)
				}
				obj, derr := parseCalObject([]byte(body), &h.zones)
				var err error
				if derr != nil {
					err = derr
				} else {
					_, _, err = a.PutObject(ctx, coll.ID, fmt.Sprintf("e%d.ics", i), []byte(body), store.PutObjectOptions{Summary: obj.summary(&h.zones)})
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		})
	}
	for i := range benchEvents {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	return &benchCalendar{a: a, coll: coll, h: h}
}

func (bc *benchCalendar) do(b *testing.B, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Depth", "1")
	req.Header.Set("Content-Type", "application/xml")
	req = req.WithContext(davauth.WithAccount(req.Context(), bc.a))
	rec := httptest.NewRecorder()
	bc.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMultiStatus {
		b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body.String())
	}
	return rec
}

// BenchmarkCalendarQuery: a week's time-range query over 10,000 events, as
// DAVx5 and Thunderbird send it (ETags only) and with calendar-data.
func BenchmarkCalendarQuery(b *testing.B) {
	bc := newBenchCalendar(b)
	path := "/dav/calendars/bench@example.org/calendar/"
	for _, tc := range []struct{ name, prop string }{
		{"etag", "<d:getetag/>"},
		{"data", "<d:getetag/><c:calendar-data/>"},
		{"expand", `<d:getetag/><c:calendar-data><c:expand start="20241104T000000Z" end="20241111T000000Z"/></c:calendar-data>`},
	} {
		b.Run("week/"+tc.name, func(b *testing.B) {
			body := calQuery(tc.prop, timeRangeFilter("VEVENT", "20241104T000000Z", "20241111T000000Z"))
			n := 0
			measure(b, "queries/s", func() { n = len(hrefs(bc.do(b, "REPORT", path, body).Body.String())) })
			b.ReportMetric(float64(n), "results")
		})
	}
	b.Run("year/etag", func(b *testing.B) {
		body := calQuery("<d:getetag/>", timeRangeFilter("VEVENT", "20240801T000000Z", "20250801T000000Z"))
		n := 0
		measure(b, "queries/s", func() { n = len(hrefs(bc.do(b, "REPORT", path, body).Body.String())) })
		b.ReportMetric(float64(n), "results")
	})
}

// BenchmarkSyncCollection: the initial sync of 10,000 events and a delta
// sync after ten changes.
func BenchmarkSyncCollection(b *testing.B) {
	bc := newBenchCalendar(b)
	path := "/dav/calendars/bench@example.org/calendar/"
	sync := func(token string) string {
		return `<d:sync-collection xmlns:d="DAV:"><d:sync-token>` + token + `</d:sync-token><d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>`
	}
	b.Run("initial", func(b *testing.B) {
		measure(b, "syncs/s", func() { bc.do(b, "REPORT", path, sync("")) })
	})
	c, _ := bc.a.Collection(ctx, bc.coll.ID)
	token := syncToken(c.ID, c.ModSeq)
	for i := range 10 {
		body := ics(vevent(fmt.Sprint("e", i*3+1), "geändert", ":20250101T080000Z", ":20250101T090000Z")...)
		if _, _, err := bc.a.PutObject(ctx, bc.coll.ID, fmt.Sprintf("e%d.ics", i*3+1), []byte(body), store.PutObjectOptions{Summary: store.ObjectSummary{UID: fmt.Sprint("e", i*3+1), Component: "VEVENT"}}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("delta10", func(b *testing.B) {
		n := 0
		measure(b, "syncs/s", func() { n = len(hrefs(bc.do(b, "REPORT", path, sync(token)).Body.String())) })
		if n != 10 {
			b.Fatalf("delta: %d changes", n)
		}
	})
	b.Run("propfind-depth1", func(b *testing.B) {
		measure(b, "listings/s", func() {
			bc.do(b, "PROPFIND", path, `<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>`)
		})
	})
}

// measure runs fn in the benchmark loop and reports its rate and the
// process CPU time per operation: on a busy machine the wall-clock rate
// says more about the neighbours than about kreide.
func measure(b *testing.B, unit string, fn func()) {
	before := cpuTime()
	for b.Loop() {
		fn()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
	b.ReportMetric(float64(cpuTime()-before)/float64(b.N)/1e6, "cpu-ms/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMultiget: 500 events by href, with their data (what DAVx5 and
// Thunderbird do after a sync or query).
func BenchmarkMultiget(b *testing.B) {
	bc := newBenchCalendar(b)
	path := "/dav/calendars/bench@example.org/calendar/"
	var body strings.Builder
	body.WriteString(`<c:calendar-multiget xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/><c:calendar-data/></d:prop>`)
	for i := range 500 {
		fmt.Fprintf(&body, "<d:href>%se%d.ics</d:href>", path, i*17)
	}
	body.WriteString("</c:calendar-multiget>")
	measure(b, "multigets/s", func() {
		if n := len(hrefs(bc.do(b, "REPORT", path, body.String()).Body.String())); n != 500 {
			b.Fatalf("%d results", n)
		}
	})
}
