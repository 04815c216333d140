package dav

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"kreide/bench/benchkit"
	"kreide/config"
	"kreide/protocols"
	"kreide/store"
)

// TestProfile runs the CalDAV query and the WebDAV PUT/GET workloads against
// kreide's frontends started in this process (protocols.Start), and writes a
// CPU profile of each into the directory $KREIDE_BENCH_PROFILE; then a heap
// profile with $KREIDE_BENCH_IDLE (default 1000) IMAP IDLE connections open.
// The client's goroutines carry the label side=client, so that
//
//	go tool pprof -tagignore side=client -top caldav-query.pprof
//
// shows the server alone. Sizes: $KREIDE_BENCH_EVENTS (default 10000),
// $KREIDE_BENCH_MIB (default 1024). KREIDE_BENCH_IDLE_ONLY=1 skips the CPU
// profiles and writes only the heap profile of the IDLE connections.
func TestProfile(t *testing.T) {
	out := os.Getenv("KREIDE_BENCH_PROFILE")
	if out == "" {
		t.Skip("set KREIDE_BENCH_PROFILE=DIR to write CPU profiles of kreide's DAV hot paths")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	events := envInt("KREIDE_BENCH_EVENTS", 10000)
	size := int64(envInt("KREIDE_BENCH_MIB", 1024)) << 20
	nidle := envInt("KREIDE_BENCH_IDLE", 1000)
	idleOnly := os.Getenv("KREIDE_BENCH_IDLE_ONLY") == "1"
	if err := raiseNoFile(4*nidle+4096, 3*nidle+1024); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	d, err := store.Open(t.TempDir(), store.Options{Argon2: bulkArgon2, DefaultQuota: 100 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.AddDomain(ctx, scaleDomain); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateAccount(ctx, calUser, calPass); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir, cfg.Domains, cfg.DemoAccount = d.Dir(), []string{scaleDomain}, ""
	cfg.Listen = config.Listen{IMAPS: "127.0.0.1:0", HTTPS: "127.0.0.1:0"}
	cfg.Limits.MaxConnsPerIP = 4 * nidle
	srv, err := protocols.Start(ctx, cfg, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		srv.Close()
		srv.Wait()
	}()
	base := "https://" + srv.Addr("listen.https").String()

	// Everything the client does runs under the label side=client.
	asClient := func(fn func(ctx context.Context)) {
		pprof.Do(ctx, pprof.Labels("side", "client"), fn)
	}
	profile := func(name string, fn func(ctx context.Context) (benchkit.Result, error)) {
		t.Helper()
		f, err := os.Create(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var res benchkit.Result
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		asClient(func(ctx context.Context) { res, err = fn(ctx) })
		pprof.StopCPUProfile()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: %.1f %s/s, p50 %v, p99 %v", name, res.Rate(), res.Unit, res.P50, res.P99)
	}

	if !idleOnly {
		cpuProfiles(ctx, t, base, events, size, profile, asClient)
	}

	// What an IDLE connection holds: accounts 0..nidle-1, live heap after GC,
	// sampled finely (not earlier: recording stacks would skew the CPU
	// profiles).
	runtime.MemProfileRate = 4 << 10
	for i := range nidle {
		if _, err := d.CreateAccount(ctx, scaleLogin(i), scalePassword(i)); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	ng := runtime.NumGoroutine()
	conns := make([]*idleConn, 0, nidle)
	defer func() {
		for _, ic := range conns {
			ic.c.Close()
		}
	}()
	for i := range nidle {
		ic, err := dialIdle(srv.Addr("listen.imaps").String(), i)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, ic)
	}
	time.Sleep(2 * time.Second)
	runtime.GC()
	runtime.ReadMemStats(&after)
	f, err := os.Create(filepath.Join(out, "idle-heap.pprof"))
	if err != nil {
		t.Fatal(err)
	}
	pprof.Lookup("heap").WriteTo(f, 0)
	f.Close()
	// Both ends live in this process: the client's side of each connection
	// (a tls.Conn and a 1 KiB bufio.Reader, about 10 KiB) is counted too.
	t.Logf("%d IDLE connections: live heap +%d KiB each (both ends), stacks +%d KiB each, %d goroutines each",
		nidle, (int64(after.HeapAlloc)-int64(before.HeapAlloc))/int64(nidle)/1024,
		(int64(after.StackInuse)-int64(before.StackInuse))/int64(nidle)/1024, (runtime.NumGoroutine()-ng)/nidle)
	// The store drops the mappings of databases left unused for a few
	// seconds (store/pool.go): resident now, and once that has happened.
	for _, wait := range []time.Duration{0, 8 * time.Second} {
		time.Sleep(wait)
		dbRSS, dbMaps := mappedRSS(os.Getpid(), "/store.db")
		sysRSS, _ := mappedRSS(os.Getpid(), "/system.db")
		t.Logf("after %v more: store.db mappings: %d, %.1f KiB resident each; system.db: %.1f MiB resident",
			wait, dbMaps, float64(dbRSS)/float64(max(dbMaps, 1))/1024, mib(sysRSS))
	}
	fmt.Fprintln(os.Stderr, "profiles in", out)
}

// cpuProfiles writes the CPU profiles of the CalDAV and WebDAV workloads.
func cpuProfiles(ctx context.Context, t *testing.T, base string, events int, size int64,
	profile func(name string, fn func(ctx context.Context) (benchkit.Result, error)), asClient func(fn func(ctx context.Context))) {
	t.Helper()
	var err error
	cal := &calTarget{server: "kreide", c: newClient(base, calUser, calPass, calClients),
		cal: "/dav/calendars/" + calUser + "/calendar/", pid: os.Getpid(), o: benchkit.Options{Log: os.Stderr}}
	defer cal.c.close()
	asClient(func(ctx context.Context) {
		if _, err = fillCalendar(ctx, cal, events); err != nil {
			t.Fatal(err)
		}
	})
	profile("caldav-query.pprof", func(ctx context.Context) (benchkit.Result, error) {
		var q queries
		err := queryLoop(ctx, cal, 20*time.Second, false, &q)
		return q.result(cal), err
	})
	profile("caldav-query-data.pprof", func(ctx context.Context) (benchkit.Result, error) {
		var q queries
		err := queryLoop(ctx, cal, 20*time.Second, true, &q)
		return q.result(cal), err
	})

	files := &fileTarget{server: "kreide", c: newClient(base, filesUser, filesPass, filesClients), root: "/files/", pid: os.Getpid()}
	defer files.c.close()
	var sum []byte
	profile("webdav-put.pprof", func(ctx context.Context) (res benchkit.Result, err error) {
		res, sum, err = putBig(ctx, files, size)
		return res, err
	})
	profile("webdav-get.pprof", func(ctx context.Context) (benchkit.Result, error) {
		return getBig(ctx, files, size, sum)
	})
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
