package dav

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"kreide/bench/benchkit"
	"kreide/crypto"
	"kreide/store"
)

const (
	scaleDomain   = "example.org"
	createWorkers = 16 // account creation waits on fsync, not on the CPU
	idleDialers   = 32
	startups      = 5
)

func scaleLogin(i int) string    { return fmt.Sprintf("schueler%05d@%s", i, scaleDomain) }
func scalePassword(i int) string { return fmt.Sprintf("passwort-%05d-bench", i) }

// bulkArgon2 is the password hashing cost of the bulk accounts: the store's
// test cost (1 pass over 64 KiB), not the production one (3 passes over
// 64 MiB, about 90 ms each on two cores), which would make the bulk creation
// take most of an hour and measure nothing but Argon2.
func bulkArgon2() crypto.Argon2Params {
	p := crypto.NewArgon2Params()
	p.Time, p.MemoryKiB, p.Threads = 1, 64, 1
	return p
}

// Scale is kreide alone with a school's size: 33,000 accounts created in
// bulk through the store, the start-up time of `kreide serve` until every
// listener accepts, its idle memory, and 5,000 concurrent IMAP IDLE
// connections over TLS (one per account) with the memory each costs.
func Scale(ctx context.Context, o benchkit.Options) ([]benchkit.Result, error) {
	naccts := scaled(o, 33000)
	nidle := scaled(o, 5000)
	// kreide holds a connection and an account database per client.
	if err := raiseNoFile(4*nidle+4096, 2*nidle+1024); err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "kreide-bench-scale-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	k, err := newKreide(ctx, filepath.Join(root, "kreide"))
	if err != nil {
		return nil, err
	}
	var results []benchkit.Result

	// 1. Accounts, in this process, through the store as `kreide user add`
	// does, from a few goroutines.
	logf(o, "creating %d accounts through the store (%d goroutines)", naccts, createWorkers)
	res, err := createAccounts(ctx, filepath.Join(k.dir, "data"), naccts)
	if err != nil {
		return results, err
	}
	results = append(results, res)

	// 2. Start-up, a few times: from exec until every listener accepts.
	var starts benchkit.Latencies
	var total time.Duration
	for i := range startups {
		d, err := k.start(ctx)
		if err != nil {
			return results, err
		}
		starts.Add(d)
		total += d
		logf(o, "start-up %d: %v", i+1, d.Round(time.Millisecond))
		if i < startups-1 {
			k.stop()
		}
	}
	defer k.stop()
	pid := k.p.pid()
	time.Sleep(3 * time.Second)
	idle := readProcMem(pid)
	logf(o, "idle: RSS %.1f MiB (anon %.1f MiB)", mib(idle.RSS), mib(idle.Anon))
	results = append(results, benchkit.Result{
		Workload: fmt.Sprintf("Scale: start-up with %s accounts", thousands(naccts)), Server: "kreide", Unit: "starts",
		Ops: startups, Elapsed: total, P50: starts.Percentile(50), P99: starts.Percentile(100), PeakRSS: idle.RSS,
		Note: fmt.Sprintf("until all 6 listeners accept; p99 = slowest of %d; RSS = idle (anon %.1f MiB); target < 1 s", startups, mib(idle.Anon)),
	})

	// 3. IDLE connections, one per account.
	logf(o, "opening %d IMAP IDLE connections over TLS", nidle)
	res, err = idleConnections(ctx, o, k, nidle, idle)
	if err != nil {
		return results, err
	}
	return append(results, res), nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// raiseNoFile lets this process (and the servers it starts, which inherit
// the limit) open want files, or as many as the hard limit allows (raising
// it needs CAP_SYS_RESOURCE, which a container may not give even to root);
// less than need is an error.
func raiseNoFile(want, need int) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur >= uint64(want) {
		return nil
	}
	if l.Max < uint64(want) {
		raised := syscall.Rlimit{Cur: uint64(want), Max: uint64(want)}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			return nil
		}
	}
	l.Cur = min(uint64(want), l.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("raising RLIMIT_NOFILE to %d: %w", l.Cur, err)
	}
	if l.Cur < uint64(need) {
		return fmt.Errorf("RLIMIT_NOFILE: the hard limit is %d, the benchmark needs %d open files", l.Max, need)
	}
	return nil
}

// createAccounts creates n accounts in the data dir with the bulk Argon2
// cost, then a few with the production cost to tell what that would take.
func createAccounts(ctx context.Context, dataDir string, n int) (benchkit.Result, error) {
	d, err := store.Open(dataDir, store.Options{Argon2: bulkArgon2})
	if err != nil {
		return benchkit.Result{}, err
	}
	if err := d.AddDomain(ctx, scaleDomain); err != nil {
		d.Close()
		return benchkit.Result{}, err
	}
	var lat benchkit.Latencies
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	var wg sync.WaitGroup
	for range createWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				err := lat.Time(func() error {
					_, err := d.CreateAccount(ctx, scaleLogin(i), scalePassword(i))
					return err
				})
				if err != nil {
					errOnce.Do(func() { firstErr = err; next.Store(int64(n)) })
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := d.Close(); err != nil && firstErr == nil {
		firstErr = err
	}
	if firstErr != nil {
		return benchkit.Result{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return benchkit.Result{}, err
	}

	// The production cost, for comparison: a few accounts one at a time.
	d, err = store.Open(dataDir, store.Options{})
	if err != nil {
		return benchkit.Result{}, err
	}
	const prod = 5
	t0 := time.Now()
	for i := range prod {
		if _, err := d.CreateAccount(ctx, fmt.Sprintf("lehrer%d@%s", i, scaleDomain), "a long production password"); err != nil {
			d.Close()
			return benchkit.Result{}, err
		}
	}
	per := time.Since(t0) / prod
	if err := d.Close(); err != nil {
		return benchkit.Result{}, err
	}
	du := dirSize(dataDir)
	return benchkit.Result{
		Workload: fmt.Sprintf("Scale: create %s accounts (store, %d goroutines)", thousands(n), createWorkers),
		Server:   "kreide", Unit: "accounts", Ops: float64(n), Elapsed: elapsed, P50: lat.Percentile(50), P99: lat.Percentile(99),
		Note: fmt.Sprintf("Argon2 1x64 KiB for the bulk; with production Argon2 %v/account (%d cores), ≈ %v for all; %.0f MiB on disk",
			per.Round(time.Millisecond), runtime.NumCPU(), (per * time.Duration(n)).Round(time.Minute), mib(du)),
	}, nil
}

// dirSize is the disk usage of a tree, in bytes (allocated blocks).
func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		}
		return nil
	})
	return n
}

// idleConn is one IMAP client waiting in IDLE.
type idleConn struct {
	c net.Conn
	r *bufio.Reader
}

// imapCommand sends one tagged command and reads to its tagged answer
// (or, for IDLE, to the continuation).
func (ic *idleConn) command(tag, cmd string) error {
	if _, err := fmt.Fprintf(ic.c, "%s %s\r\n", tag, cmd); err != nil {
		return err
	}
	for {
		line, err := ic.r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("%s: %w", strings.Fields(cmd)[0], err)
		}
		switch {
		case strings.HasPrefix(cmd, "IDLE") && strings.HasPrefix(line, "+"):
			return nil
		case strings.HasPrefix(line, tag+" OK"):
			return nil
		case strings.HasPrefix(line, tag+" "):
			return fmt.Errorf("%s: %s", strings.Fields(cmd)[0], strings.TrimSpace(line))
		}
	}
}

func dialIdle(addr string, i int) (*idleConn, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	ic := &idleConn{c: c, r: bufio.NewReaderSize(c, 1024)}
	if _, err := ic.r.ReadString('\n'); err != nil { // greeting
		c.Close()
		return nil, err
	}
	for _, step := range []struct{ tag, cmd string }{
		{"a", fmt.Sprintf("LOGIN %s %q", scaleLogin(i), scalePassword(i))},
		{"b", "SELECT INBOX"},
		{"c", "IDLE"},
	} {
		if err := ic.command(step.tag, step.cmd); err != nil {
			c.Close()
			return nil, fmt.Errorf("%s: %w", scaleLogin(i), err)
		}
	}
	c.SetDeadline(time.Time{})
	return ic, nil
}

// idleConnections opens n IDLE connections, accounts 0..n-1, and measures
// what they cost kreide in memory once everything has settled.
func idleConnections(ctx context.Context, o benchkit.Options, k *kreideServer, n int, before procMem) (benchkit.Result, error) {
	pid := k.p.pid()
	conns := make([]*idleConn, n)
	defer func() {
		for _, ic := range conns {
			if ic != nil {
				ic.c.Close()
			}
		}
	}()
	var lat benchkit.Latencies
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	rss := benchkit.WatchRSS(pid)
	start := time.Now()
	var wg sync.WaitGroup
	for range idleDialers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				ic, err := dialIdle(k.addr("imaps"), i)
				if err != nil {
					errOnce.Do(func() { firstErr = err; next.Store(int64(n)) })
					return
				}
				lat.Add(time.Since(t0))
				conns[i] = ic
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		rss.Stop()
		return benchkit.Result{}, fmt.Errorf("IDLE connection %d of %d: %w", lat.Count()+1, n, firstErr)
	}
	if err := ctx.Err(); err != nil {
		rss.Stop()
		return benchkit.Result{}, err
	}
	// Let the server settle (the Go runtime returns freed memory over
	// minutes; what stays is what the connections hold), then check that
	// every connection is still there.
	time.Sleep(10 * time.Second)
	after := readProcMem(pid)
	peak := rss.Stop()
	alive := 0
	for _, ic := range conns {
		ic.c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := ic.r.Peek(1); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				alive++
			}
		}
	}
	if alive != n {
		return benchkit.Result{}, fmt.Errorf("only %d of %d IDLE connections still open after 10 s", alive, n)
	}
	per := float64(after.RSS-before.RSS) / float64(n) / 1024
	perAnon := float64(after.Anon-before.Anon) / float64(n) / 1024
	perFile := float64(after.File-before.File) / float64(n) / 1024
	dbRSS, dbMaps := mappedRSS(pid, "/store.db")
	sysRSS, _ := mappedRSS(pid, "/system.db")
	logf(o, "after 10 s: RSS %.1f MiB; per connection %.1f KiB: anon %.1f KiB, file %.1f KiB (store.db: %d mappings, %.1f KiB resident each; system.db: %.1f MiB resident)",
		mib(after.RSS), per, perAnon, perFile, dbMaps, float64(dbRSS)/float64(max(dbMaps, 1))/1024, mib(sysRSS))
	return benchkit.Result{
		Workload: fmt.Sprintf("Scale: %s IMAP IDLE over TLS (%d dialers)", thousands(n), idleDialers),
		Server:   "kreide", Unit: "conns", Ops: float64(n), Elapsed: elapsed, P50: lat.Percentile(50), P99: lat.Percentile(99),
		PeakRSS: peak,
		Note: fmt.Sprintf("one account each; RSS %.0f KiB/conn (anon %.0f KiB, file %.0f KiB), %.0f MiB in all after 10 s; target < 64 KiB",
			per, perAnon, perFile, mib(after.RSS)),
	}, nil
}

// mappedRSS sums the resident memory of a process's mappings of files whose
// name ends with suffix (from /proc/PID/smaps), and counts those mappings.
func mappedRSS(pid int, suffix string) (rss int64, maps int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return 0, 0
	}
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") || len(f) >= 5 && strings.Contains(f[0], "-") {
			// A mapping's header: address range, perms, offset, dev, inode[, path].
			in = len(f) >= 6 && strings.HasSuffix(f[5], suffix)
			if in {
				maps++
			}
			continue
		}
		if in && f[0] == "Rss:" && len(f) >= 2 {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			rss += kb * 1024
		}
	}
	return rss, maps
}
