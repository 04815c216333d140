package dav

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"kreide/bench/benchkit"
)

// TestSuites runs the suites named in KREIDE_BENCH_DAV (e.g.
// "caldav,webdav,scale") with -quick sizes, or full ones with
// KREIDE_BENCH_FULL=1. `go run ./bench` is the real thing; this runs the
// suites of this package alone.
func TestSuites(t *testing.T) {
	only := os.Getenv("KREIDE_BENCH_DAV")
	if only == "" {
		t.Skip("set KREIDE_BENCH_DAV=caldav,webdav,scale to run the DAV benchmark suites")
	}
	o := benchkit.Options{Quick: os.Getenv("KREIDE_BENCH_FULL") == "", Log: os.Stderr}
	var results []benchkit.Result
	for _, s := range []struct {
		name string
		run  func(context.Context, benchkit.Options) ([]benchkit.Result, error)
	}{{"caldav", CalDAV}, {"webdav", WebDAV}, {"scale", Scale}} {
		if !slices.Contains(strings.Split(only, ","), s.name) {
			continue
		}
		start := time.Now()
		rs, err := s.run(context.Background(), o)
		if err != nil {
			t.Errorf("%s: %v", s.name, err)
		}
		t.Logf("%s: %v", s.name, time.Since(start).Round(time.Second))
		results = append(results, rs...)
	}
	benchkit.PrintTable(os.Stdout, results)
}

func TestMultistatus(t *testing.T) {
	b := []byte(`<?xml version="1.0"?><x:multistatus xmlns:x="DAV:"><x:response><x:href>/a</x:href><x:propstat><x:status>HTTP/1.1 200 OK</x:status></x:propstat></x:response>` +
		`<x:response><x:href>/b</x:href><x:status>HTTP/1.1 404 Not Found</x:status></x:response><x:sync-token>tok</x:sync-token></x:multistatus>`)
	ms, err := parseMultistatus(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms.hrefs) != 2 || ms.notFound != 1 || ms.syncToken != "tok" {
		t.Fatalf("%+v", ms)
	}
}

func TestEventsParse(t *testing.T) {
	for _, i := range []int{0, 1, 10, 30, 100} {
		s := eventICS(i, 0)
		if !strings.HasPrefix(s, "BEGIN:VCALENDAR\r\n") || !strings.HasSuffix(s, "END:VCALENDAR\r\n") {
			t.Fatalf("event %d: %q", i, s)
		}
	}
}
