package dav

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"kreide/bench/benchkit"
)

// The benchmark calendar: n events over four school years from calBase, one
// in ten a weekly series in Europe/Berlin time (most of them for 20 weeks,
// one in ten of those endless, some with an exception), the others single
// events in UTC.
var calBase = time.Date(2023, 8, 7, 0, 0, 0, 0, time.UTC) // a Monday

const (
	calWeeks     = 4 * 52
	calUser      = "bench@example.org"
	calPass      = "bench password 1"
	calClients   = 8
	syncChanges  = 10
	querySlices  = 3
	icsTimestamp = "20060102T150405"
)

const vtimezoneBerlin = "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\n" +
	"DTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\nBEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\n" +
	"TZOFFSETTO:+0100\r\nTZNAME:CET\r\nDTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"

var berlin = func() *time.Location {
	if l, err := time.LoadLocation("Europe/Berlin"); err == nil {
		return l
	}
	return time.FixedZone("CET", 3600)
}()

// eventName is the resource name of event i.
func eventName(i int) string { return eventUID(i) + ".ics" }

// eventUID is event i's UID; the resource name is the UID with ".ics", as
// most clients do (and as Radicale names the events of a whole calendar
// PUT at once).
func eventUID(i int) string { return fmt.Sprintf("e%05d", i) }

// eventICS is event i as a calendar object; rev changes its summary.
func eventICS(i, rev int) string {
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//kreide bench//EN\r\n")
	day := (i * 7919) % (calWeeks * 7)
	start := calBase.AddDate(0, 0, day).Add(time.Duration(7+i%9)*time.Hour + time.Duration(i%4)*15*time.Minute)
	recurring := i%10 == 0
	if recurring {
		b.WriteString(vtimezoneBerlin)
	}
	b.WriteString("BEGIN:VEVENT\r\n")
	fmt.Fprintf(&b, "UID:%s\r\nDTSTAMP:20230801T080000Z\r\nSEQUENCE:%d\r\n", eventUID(i), rev)
	if recurring {
		local := time.Date(start.Year(), start.Month(), start.Day(), start.Hour(), start.Minute(), 0, 0, berlin)
		fmt.Fprintf(&b, "DTSTART;TZID=Europe/Berlin:%s\r\nDTEND;TZID=Europe/Berlin:%s\r\n",
			local.Format(icsTimestamp), local.Add(45*time.Minute).Format(icsTimestamp))
		if i%100 == 0 {
			b.WriteString("RRULE:FREQ=WEEKLY\r\n")
		} else {
			b.WriteString("RRULE:FREQ=WEEKLY;COUNT=20\r\n")
		}
		if i%30 == 0 {
			fmt.Fprintf(&b, "EXDATE;TZID=Europe/Berlin:%s\r\n", local.AddDate(0, 0, 14).Format(icsTimestamp))
		}
		fmt.Fprintf(&b, "SUMMARY:Kurs %d (Rev. %d)\r\n", i, rev)
	} else {
		fmt.Fprintf(&b, "DTSTART:%sZ\r\nDTEND:%sZ\r\n", start.Format(icsTimestamp), start.Add(time.Hour).Format(icsTimestamp))
		fmt.Fprintf(&b, "SUMMARY:Termin %d (Rev. %d)\r\n", i, rev)
	}
	fmt.Fprintf(&b, "LOCATION:Raum %d\r\nDESCRIPTION:Elternsprechtag\\, Fachkonferenz oder Klassenfahrt: bitte die Unterlagen mitbringen und den Raum %d vorher lüften.\r\n", 100+i%60, 100+i%60)
	b.WriteString("END:VEVENT\r\nEND:VCALENDAR\r\n")
	return b.String()
}

// weekRange is the UTC time range of week w of the calendar.
func weekRange(w int) (string, string) {
	s := calBase.AddDate(0, 0, 7*w)
	return s.Format(icsTimestamp) + "Z", s.AddDate(0, 0, 7).Format(icsTimestamp) + "Z"
}

func calendarQuery(w int, withData bool) string {
	s, e := weekRange(w)
	data := ""
	if withData {
		data = "<C:calendar-data/>"
	}
	return `<?xml version="1.0" encoding="utf-8"?>` +
		`<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/>` + data + `</D:prop>` +
		`<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">` +
		`<C:time-range start="` + s + `" end="` + e + `"/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>`
}

func syncQuery(token string) string {
	return `<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:"><D:sync-token>` + token +
		`</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>`
}

// calTarget is one server under the CalDAV workload.
type calTarget struct {
	server string
	c      *client
	cal    string // the calendar's path, with a trailing slash
	pid    int
	note   string
	counts map[int]int // week -> events found (the cross-check)
	// storage is the calendar's folder on disk, for a server filled
	// partly behind its back (Radicale); "" for kreide.
	storage string
	o       benchkit.Options
}

// CalDAV fills a calendar of 10,000 events on kreide and Radicale, then
// measures one-week calendar-query REPORTs from 8 clients for a fixed time
// and sync-collection REPORTs (initial, and after 10 changes).
func CalDAV(ctx context.Context, o benchkit.Options) ([]benchkit.Result, error) {
	n := scaled(o, 10000)
	dur := 45 * time.Second
	if o.Quick {
		dur = 6 * time.Second
	}
	root, err := os.MkdirTemp("", "kreide-bench-caldav-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)

	k, err := newKreide(ctx, filepath.Join(root, "kreide"))
	if err != nil {
		return nil, err
	}
	if err := k.addUser(ctx, calUser, calPass); err != nil {
		return nil, err
	}
	if _, err := k.start(ctx); err != nil {
		return nil, err
	}
	defer k.stop()
	targets := []*calTarget{{
		server: "kreide", c: newClient(k.base(), calUser, calPass, calClients),
		cal: "/dav/calendars/" + calUser + "/calendar/", pid: k.p.pid(), note: "encrypted at rest", o: o,
	}}

	peerNote := ""
	r, err := startRadicale(ctx, filepath.Join(root, "radicale"), map[string]string{calUser: calPass})
	switch {
	case errors.Is(err, errNotInstalled):
		peerNote = "radicale not installed"
		logf(o, "radicale is not installed: kreide alone")
	case err != nil:
		// kreide's figures are still worth having.
		peerNote = "radicale failed to start (see log)"
		logf(o, "radicale failed to start: %v", err)
	default:
		defer r.stop()
		rc := newClient(r.base(), calUser, calPass, calClients)
		cal := "/" + calUser + "/calendar/"
		if _, err := rc.call(ctx, "MKCALENDAR", cal, "", []int{201}); err != nil {
			return nil, fmt.Errorf("radicale: %w", err)
		}
		targets = append(targets, &calTarget{server: "radicale", c: rc, cal: cal, pid: r.p.pid(), o: o,
			storage: filepath.Join(r.dir, "collections", "collection-root", calUser, "calendar"),
			note:    "plain files; HTTP/1.0, a TLS handshake per request"})
	}
	defer func() {
		for _, t := range targets {
			t.c.close()
		}
	}()
	if peerNote != "" {
		targets[0].note += "; " + peerNote
	}

	// One request first: kreide's first login of an account runs Argon2
	// (about 90 ms, and 8 clients at once queue for it), later ones hit its
	// unlock cache. A client logs in once and then works for hours.
	for _, t := range targets {
		if _, err := t.c.call(ctx, "PROPFIND", t.cal, "", []int{207}, "Depth", "0"); err != nil {
			return nil, fmt.Errorf("%s: %w", t.server, err)
		}
	}
	var results []benchkit.Result
	// Each phase runs on kreide, then at once on the peer.
	wl := fmt.Sprintf("CalDAV PUT %s events (%d clients)", thousands(n), calClients)
	for _, t := range targets {
		logf(o, "%s: filling a calendar with %d events", t.server, n)
		res, err := fillCalendar(ctx, t, n)
		if err != nil {
			return results, fmt.Errorf("%s: %w", t.server, err)
		}
		res.Workload = wl
		results = append(results, res)
	}
	for _, t := range targets {
		if err := crossCheck(ctx, t); err != nil {
			return results, fmt.Errorf("%s: %w", t.server, err)
		}
	}
	mismatch := compareCounts(targets)
	// The queries run in slices, kreide and the peer in turn, so that both
	// see the same moments of a shared machine.
	for _, withData := range []bool{false, true} {
		what := "etags"
		if withData {
			what = "etags+data"
		}
		qs := map[*calTarget]*queries{}
		for slice := range querySlices {
			for _, t := range targets {
				if qs[t] == nil {
					qs[t] = &queries{}
				}
				logf(o, "%s: calendar-query (%s) for %v (%d of %d)", t.server, what, dur/querySlices, slice+1, querySlices)
				if err := queryLoop(ctx, t, dur/querySlices, withData, qs[t]); err != nil {
					return results, fmt.Errorf("%s: %w", t.server, err)
				}
			}
		}
		for _, t := range targets {
			res := qs[t].result(t)
			res.Workload = fmt.Sprintf("CalDAV query 1 week, %s (%d clients)", what, calClients)
			if mismatch != "" && t.server != "kreide" {
				res.Note += "; " + mismatch
			}
			results = append(results, res)
		}
	}
	reps, rounds := 5, 10
	if o.Quick {
		reps, rounds = 3, 3
	}
	tokens := map[*calTarget]string{}
	for _, t := range targets {
		logf(o, "%s: sync-collection, initial", t.server)
		res, tok, err := syncInitial(ctx, t, n, reps)
		if err != nil {
			return results, fmt.Errorf("%s: %w", t.server, err)
		}
		res.Workload = fmt.Sprintf("CalDAV sync-collection initial (%s)", thousands(n))
		tokens[t] = tok
		results = append(results, res)
	}
	for _, t := range targets {
		logf(o, "%s: sync-collection after %d changes", t.server, syncChanges)
		res, err := syncAfterChanges(ctx, t, n, rounds, tokens[t])
		if err != nil {
			return results, fmt.Errorf("%s: %w", t.server, err)
		}
		res.Workload = fmt.Sprintf("CalDAV sync-collection after %d changes", syncChanges)
		results = append(results, res)
	}
	return results, nil
}

// fillCalendar PUTs n events from calClients clients, one PUT each. A
// server that gets slower with every event stored (Radicale compares the
// new UID with every event of the calendar, so a PUT costs O(events) and the
// fill O(events²): hours for 10,000; one PUT of the whole calendar took it
// five minutes and once failed) gets the first tenth by PUT, which is what
// is measured, and the rest written into its storage folder directly, one
// .ics file per event as it stores them itself.
func fillCalendar(ctx context.Context, t *calTarget, n int) (benchkit.Result, error) {
	m := n
	if t.storage != "" {
		m = max(n/10, 1)
	}
	var lat benchkit.Latencies
	jobs := make(chan int)
	var firstErr error
	var errOnce sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rss := watch(t.pid, false)
	start := time.Now()
	var wg sync.WaitGroup
	for range calClients {
		wg.Go(func() {
			for i := range jobs {
				err := lat.Time(func() error {
					_, err := t.c.call(ctx, "PUT", t.cal+eventName(i), eventICS(i, 0), []int{201, 204},
						"Content-Type", "text/calendar; charset=utf-8", "If-None-Match", "*")
					return err
				})
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
				}
			}
		})
	}
feed:
	for i := range m {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	peak := rss.Stop()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return benchkit.Result{}, firstErr
	}
	note := t.note
	if m < n {
		for i := m; i < n; i++ {
			if err := os.WriteFile(filepath.Join(t.storage, eventName(i)), []byte(eventICS(i, 0)), 0o600); err != nil {
				return benchkit.Result{}, err
			}
		}
		note = fmt.Sprintf("first %s by PUT (rate falls as the calendar grows), the rest written to its folder; %s",
			thousands(m), note)
	}
	return benchkit.Result{Server: t.server, Unit: "events", Ops: float64(m), Elapsed: elapsed,
		P50: lat.Percentile(50), P99: lat.Percentile(99), PeakRSS: peak, Note: note}, nil
}

// checkWeeks are the weeks whose answers are compared between servers.
var checkWeeks = []int{0, 1, 30, 60, 100, 140, 180, 207}

// crossCheck counts the events each check week has on the server.
func crossCheck(ctx context.Context, t *calTarget) error {
	t.counts = map[int]int{}
	for _, w := range checkWeeks {
		b, err := t.c.call(ctx, "REPORT", t.cal, calendarQuery(w, false), []int{207}, "Depth", "1", "Content-Type", "application/xml; charset=utf-8")
		if err != nil {
			return err
		}
		ms, err := parseMultistatus(b)
		if err != nil {
			return err
		}
		t.counts[w] = len(ms.hrefs)
	}
	logf(t.o, "%s: events in weeks %v: %v", t.server, checkWeeks, t.counts)
	return nil
}

// compareCounts says where the servers' answers differ ("" when they agree).
func compareCounts(ts []*calTarget) string {
	if len(ts) < 2 {
		return ""
	}
	var diffs []string
	for _, w := range checkWeeks {
		if a, b := ts[0].counts[w], ts[1].counts[w]; a != b {
			diffs = append(diffs, fmt.Sprintf("week %d: kreide %d, %s %d", w, a, ts[1].server, b))
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	return "ANSWERS DIFFER: " + strings.Join(diffs, ", ")
}

// queries accumulates the calendar-queries of one server over the slices
// of a phase.
type queries struct {
	lat     benchkit.Latencies
	found   atomic.Int64
	elapsed time.Duration
	peak    int64
	rnd     []*rand.Rand // one per client, kept across slices
}

// queryLoop runs one-week calendar-queries at random weeks from calClients
// clients for dur (queries under way at the end finish), adding to q.
func queryLoop(ctx context.Context, t *calTarget, dur time.Duration, withData bool, q *queries) error {
	if q.rnd == nil {
		for i := range calClients {
			q.rnd = append(q.rnd, rand.New(rand.NewPCG(uint64(i), 42)))
		}
	}
	var firstErr error
	var errOnce sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rss := watch(t.pid, false)
	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	for i := range calClients {
		rnd := q.rnd[i]
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				w := rnd.IntN(calWeeks)
				err := q.lat.Time(func() error {
					b, err := t.c.call(ctx, "REPORT", t.cal, calendarQuery(w, withData), []int{207},
						"Depth", "1", "Content-Type", "application/xml; charset=utf-8")
					if err != nil {
						return err
					}
					ms, err := parseMultistatus(b)
					q.found.Add(int64(len(ms.hrefs)))
					return err
				})
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
				}
			}
		})
	}
	wg.Wait()
	q.elapsed += time.Since(start)
	q.peak = max(q.peak, rss.Stop())
	return firstErr
}

// result is what q measured.
func (q *queries) result(t *calTarget) benchkit.Result {
	n := q.lat.Count()
	note := t.note
	if n > 0 {
		note = fmt.Sprintf("%.0f events/answer; %s", float64(q.found.Load())/float64(n), note)
	}
	return benchkit.Result{Server: t.server, Unit: "queries", Ops: float64(n), Elapsed: q.elapsed,
		P50: q.lat.Percentile(50), P99: q.lat.Percentile(99), PeakRSS: q.peak, Note: note}
}

// syncInitial runs reps initial sync-collection REPORTs and returns the
// last sync token.
func syncInitial(ctx context.Context, t *calTarget, n, reps int) (benchkit.Result, string, error) {
	var lat benchkit.Latencies
	var token string
	rss := watch(t.pid, false)
	start := time.Now()
	for range reps {
		var ms multistatus
		err := lat.Time(func() error {
			b, err := t.c.call(ctx, "REPORT", t.cal, syncQuery(""), []int{207}, "Depth", "0", "Content-Type", "application/xml; charset=utf-8")
			if err != nil {
				return err
			}
			ms, err = parseMultistatus(b)
			return err
		})
		if err != nil {
			rss.Stop()
			return benchkit.Result{}, "", err
		}
		if len(ms.hrefs) != n || ms.syncToken == "" {
			rss.Stop()
			return benchkit.Result{}, "", fmt.Errorf("initial sync-collection: %d members (want %d), token %q", len(ms.hrefs), n, ms.syncToken)
		}
		token = ms.syncToken
	}
	elapsed := time.Since(start)
	return benchkit.Result{Server: t.server, Unit: "syncs", Ops: float64(reps), Elapsed: elapsed,
		P50: lat.Percentile(50), P99: lat.Percentile(99), PeakRSS: rss.Stop(), Note: t.note}, token, nil
}

// syncAfterChanges changes syncChanges events, then asks for the changes
// since token; rounds times. Only the REPORTs are timed.
func syncAfterChanges(ctx context.Context, t *calTarget, n, rounds int, token string) (benchkit.Result, error) {
	var lat benchkit.Latencies
	var busy time.Duration
	rss := watch(t.pid, false)
	fail := func(err error) (benchkit.Result, error) {
		rss.Stop()
		return benchkit.Result{}, err
	}
	for r := range rounds {
		for j := range syncChanges {
			i := (r*syncChanges + j) * 97 % n
			if _, err := t.c.call(ctx, "PUT", t.cal+eventName(i), eventICS(i, r+1), []int{201, 204},
				"Content-Type", "text/calendar; charset=utf-8"); err != nil {
				return fail(err)
			}
		}
		start := time.Now()
		b, err := t.c.call(ctx, "REPORT", t.cal, syncQuery(token), []int{207}, "Depth", "0", "Content-Type", "application/xml; charset=utf-8")
		d := time.Since(start)
		if err != nil {
			return fail(err)
		}
		ms, err := parseMultistatus(b)
		if err != nil {
			return fail(err)
		}
		lat.Add(d)
		busy += d
		if len(ms.hrefs) < syncChanges || ms.syncToken == "" {
			return fail(fmt.Errorf("sync-collection after %d changes: %d members, token %q", syncChanges, len(ms.hrefs), ms.syncToken))
		}
		token = ms.syncToken
	}
	return benchkit.Result{Server: t.server, Unit: "syncs", Ops: float64(rounds), Elapsed: busy,
		P50: lat.Percentile(50), P99: lat.Percentile(99), PeakRSS: rss.Stop(), Note: t.note}, nil
}

// thousands writes n with comma separators: 10,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
