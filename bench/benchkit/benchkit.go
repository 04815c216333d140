// Package benchkit is what the benchmark suites share: results, latency
// recording, peak-RSS sampling of a process, and the table that compares
// kreide with its peers.
package benchkit

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Result is one server's figures for one workload.
type Result struct {
	Workload string // e.g. "IMAP mixed (50 clients)"
	Server   string // "kreide", "dovecot", "postfix+dovecot", "radicale", "apache"
	Unit     string // what Ops counts: "commands", "messages", "queries", "MB"
	Ops      float64
	Elapsed  time.Duration
	P50, P99 time.Duration
	PeakRSS  int64  // bytes; 0 if not measured
	Note     string // anything a reader must know (e.g. "encryption on")
}

// Rate is Ops per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return r.Ops / r.Elapsed.Seconds()
}

// Latencies records operation latencies from many goroutines.
type Latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

// Add records one latency.
func (l *Latencies) Add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// Time runs fn and records how long it took.
func (l *Latencies) Time(fn func() error) error {
	start := time.Now()
	err := fn()
	l.Add(time.Since(start))
	return err
}

// Count is the number of recorded operations.
func (l *Latencies) Count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.d)
}

// Percentile returns the p-th percentile (0 < p <= 100).
func (l *Latencies) Percentile(p float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// RSS samples the resident set size of processes (kreide and its peers,
// including their children) until Stop, and keeps the peak.
type RSS struct {
	pids []int
	stop chan struct{}
	done chan struct{}
	peak int64
}

// WatchRSS starts sampling the summed RSS of pids every 50 ms.
func WatchRSS(pids ...int) *RSS {
	r := &RSS{pids: pids, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			var sum int64
			for _, p := range r.pids {
				sum += ProcessRSS(p)
			}
			r.peak = max(r.peak, sum)
			select {
			case <-r.stop:
				return
			case <-t.C:
			}
		}
	}()
	return r
}

// Stop ends sampling and returns the peak in bytes.
func (r *RSS) Stop() int64 {
	close(r.stop)
	<-r.done
	return r.peak
}

// ProcessRSS reads VmRSS of a process from /proc (0 if unknown).
func ProcessRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// PrintTable prints results grouped by workload, with each peer's ratio
// kreide/peer of the rate (higher is better for kreide).
func PrintTable(w io.Writer, results []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\tserver\tops/s\tp50\tp99\tpeak RSS\tkreide/peer\tnote")
	var order []string
	by := map[string][]Result{}
	for _, r := range results {
		if _, ok := by[r.Workload]; !ok {
			order = append(order, r.Workload)
		}
		by[r.Workload] = append(by[r.Workload], r)
	}
	for _, wl := range order {
		var kreide float64
		for _, r := range by[wl] {
			if r.Server == "kreide" {
				kreide = r.Rate()
			}
		}
		for _, r := range by[wl] {
			ratio := ""
			if r.Server != "kreide" && r.Rate() > 0 && kreide > 0 {
				ratio = fmt.Sprintf("%.2fx", kreide/r.Rate())
			}
			rss := ""
			if r.PeakRSS > 0 {
				rss = fmt.Sprintf("%.1f MiB", float64(r.PeakRSS)/(1<<20))
			}
			fmt.Fprintf(tw, "%s\t%s\t%.1f %s\t%v\t%v\t%s\t%s\t%s\n", wl, r.Server, r.Rate(), r.Unit,
				r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), rss, ratio, r.Note)
		}
	}
	tw.Flush()
}

// Options are what every suite gets.
type Options struct {
	Quick bool      // smaller data sets
	Log   io.Writer // progress and notes (stderr)
}
