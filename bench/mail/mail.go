// Package mail measures kreide's IMAP and SMTP side by side with Dovecot
// and Postfix delivering to Dovecot, on this machine, with the same data
// and the same clients (README.md, "Benchmarks").
//
// Every server is a child process over a temporary directory, listening on
// free loopback ports, without TLS (both allow passwords in clear on
// loopback): kreide is built from ./cmd/kreide and run with `kreide serve`
// (its accounts made with `kreide user add`); Dovecot and Postfix are the
// Debian packages with a config written here (peers.go). Peers that are not
// installed are left out with a note.
//
// The data: every user has an INBOX of generated school mail (data.go).
// Dovecot's Maildirs are written as files, as Dovecot's own delivery would
// write them; kreide gets the same messages, flags and dates over IMAP
// APPEND (4 connections per user), the way a migration tool fills it. Then
// every user's INBOX is read once by each server (warm-up: Dovecot builds
// its index and cache), and the measurements run with kreide and the peer
// taking turns: resync passes alternate, and the mixed and SMTP workloads
// run in rounds of which each server's best counts, because the machine
// may be shared. kreide's inbound SMTP gets a DNS stub (dnsstub.go).
package mail

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"

	"kreide/bench/benchkit"
)

const (
	benchDomain   = "bench.example"
	benchPassword = "lange Pause auf dem Schulhof 7"
)

// sizes of one run; -quick takes a tenth of the data.
type sizes struct {
	users        int           // accounts
	messages     int           // in each INBOX
	clients      int           // IMAP mixed workload
	duration     time.Duration // of the IMAP mixed workload
	resyncPasses int
	rounds       int // of the IMAP mixed and SMTP workloads, per server
	smtpConns    int
	smtpMessages int
}

func sizesFor(quick bool) sizes {
	s := sizes{users: 10, messages: 10000, clients: 50, duration: 20 * time.Second, resyncPasses: 3, rounds: 2, smtpConns: 20, smtpMessages: 5000}
	if quick {
		s.messages /= 10
		s.smtpMessages /= 10
		s.duration = 5 * time.Second
		s.rounds = 1
	}
	return s
}

func userNames(n int) []string {
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("lehrer%02d@%s", i, benchDomain)
	}
	return users
}

func logger(o benchkit.Options) func(string, ...any) {
	return func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, "mail: "+format+"\n", args...)
		}
	}
}

// IMAP runs the Thunderbird-like resync and the mixed workload against
// kreide and Dovecot.
func IMAP(ctx context.Context, o benchkit.Options) ([]benchkit.Result, error) {
	sz := sizesFor(o.Quick)
	logf := logger(o)
	tmp, cleanup, err := tempDir("kreide-bench-imap-", logf)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	users := userNames(sz.users)
	total := sz.users * sz.messages

	logf("starting kreide and creating %d accounts", len(users))
	k, err := startKreide(ctx, mkdir(tmp, "kreide"), users, benchPassword, "")
	if err != nil {
		return nil, err
	}
	defer k.stop()

	dovecotNote := ""
	d, err := prepareDovecot(ctx, mkdir(tmp, "dovecot"), users, benchPassword)
	if err == nil {
		logf("writing %d messages into Dovecot's Maildirs", total)
		err = parallel(users, func(u string) error { return writeMaildir(d.maildir(u), u, sz.messages) })
		if err == nil {
			err = d.start(ctx)
		}
	}
	if err != nil {
		dovecotNote = "dovecot not installed"
		if !errors.Is(err, errNotInstalled) {
			dovecotNote = "dovecot did not start"
			logf("dovecot: %v", err)
		}
		d = nil
	} else {
		// Not "defer d.stop()": d.proc changes when Dovecot restarts tuned.
		defer func() {
			if d != nil {
				d.stop()
			}
		}()
	}

	logf("appending %d messages to kreide over IMAP", total)
	t := time.Now()
	if err := appendAll(ctx, k.imapAddr, users, benchPassword, sz.messages, 4, func(n int) { logf("  %d of %d", n, total) }); err != nil {
		return nil, fmt.Errorf("filling kreide: %w", err)
	}
	logf("kreide: %d messages appended in %v (%.0f/s)", total, time.Since(t).Round(time.Millisecond), float64(total)/time.Since(t).Seconds())
	syscall.Sync() // the benchmarks should not pay for writing back the fill

	logf("warm-up: reading every INBOX once")
	if err := warmUp(k.imapAddr, users, benchPassword); err != nil {
		return nil, fmt.Errorf("kreide warm-up: %w", err)
	}
	if d != nil {
		if err := warmUp(d.imapAddr, users, benchPassword); err != nil {
			logf("dovecot warm-up: %v", err)
			d.stop()
			dovecotNote, d = "dovecot failed: "+err.Error(), nil
		}
	}
	syscall.Sync()

	var results []benchkit.Result
	type server struct{ name, addr string }
	servers := []server{{"kreide", k.imapAddr}}
	if d != nil {
		servers = append(servers, server{"dovecot", d.imapAddr})
	}

	// Thunderbird-like resync of one INBOX, the servers taking turns.
	wl := fmt.Sprintf("IMAP resync of %d msgs (Thunderbird)", sz.messages)
	times := map[string][]time.Duration{}
	count := map[string]int{}
	for range sz.resyncPasses {
		for _, s := range servers {
			el, n, err := resync(s.addr, users[0], benchPassword)
			if err != nil {
				return results, fmt.Errorf("%s resync: %w", s.name, err)
			}
			times[s.name], count[s.name] = append(times[s.name], el), n
			logf("%s: %s %v", wl, s.name, el.Round(time.Millisecond))
		}
	}
	for _, s := range servers {
		results = append(results, resyncRow(wl, s.name, times[s.name], count[s.name]))
	}
	if d == nil {
		results = append(results, benchkit.Result{Workload: wl, Server: "dovecot", Note: dovecotNote})
	}

	// The mixed workload: rounds taking turns, the best round of each
	// server counts (the machine is shared: a round can be unlucky).
	wl = fmt.Sprintf("IMAP mixed (%d clients)", sz.clients)
	type run struct {
		m    *mixedResult
		rss  int64
		mem  benchkit.TreePeak
		load string
	}
	measure := func(s server) run {
		logf("%s: %s, %v (%s)", wl, s.name, sz.duration, loadAvg())
		r := run{load: loadAvg()}
		if s.name == "kreide" {
			w, t := benchkit.WatchRSS(k.pid()), benchkit.WatchTreeRSS(k.pid())
			r.m = mixed(ctx, s.addr, users, benchPassword, sz.clients, sz.duration)
			r.rss, r.mem = w.Stop(), t.Stop()
		} else {
			t := benchkit.WatchTreeRSS(d.pid())
			r.m = mixed(ctx, s.addr, users, benchPassword, sz.clients, sz.duration)
			r.mem = t.Stop()
			r.rss = r.mem.RSS
		}
		logf("  %s: %.0f commands/s, %d failed", s.name, r.m.rate(), r.m.errors())
		return r
	}
	note := func(r run, extra string) string {
		return joinNote(joinNote(extra, r.load), memNote(r.mem))
	}
	best := map[string]run{}
	for range sz.rounds {
		for _, s := range servers {
			if r := measure(s); best[s.name].m == nil || r.m.rate() > best[s.name].m.rate() {
				best[s.name] = r
			}
		}
	}
	rounds := ""
	if sz.rounds > 1 {
		rounds = fmt.Sprintf("best of %d rounds", sz.rounds)
	}
	results = append(results, mixedResults(wl, "kreide", best["kreide"].m, best["kreide"].rss, note(best["kreide"], joinNote("encrypted at rest", rounds)))...)
	if d == nil {
		return append(results, benchkit.Result{Workload: wl, Server: "dovecot", Note: dovecotNote}), ctx.Err()
	}
	results = append(results, mixedResults(wl, "dovecot", best["dovecot"].m, best["dovecot"].rss, note(best["dovecot"], joinNote("SHA512-CRYPT, defaults", rounds)))...)

	// Dovecot verifies the hash at every login: once more with Argon2id,
	// as strong as kreide's (which kreide computes once, then keeps the
	// unlocked key).
	if err := d.setScheme(ctx, "ARGON2ID"); err != nil {
		logf("dovecot with Argon2id: %v", err)
	} else {
		r := measure(server{"dovecot-argon2id", d.imapAddr})
		results = append(results, mixedResults(wl, "dovecot-argon2id", r.m, r.rss, note(r, "ARGON2ID (64 MiB, t=3) verified at every login"))[0])
	}
	// And as Dovecot's performance tuning guide suggests, with SHA512-CRYPT.
	err = d.setScheme(ctx, "SHA512-CRYPT")
	if err == nil {
		err = d.restartTuned(ctx)
	}
	if err == nil {
		err = warmUp(d.imapAddr, users, benchPassword)
	}
	if err != nil {
		logf("dovecot tuned: %v", err)
	} else {
		r := measure(server{"dovecot-tuned", d.imapAddr})
		results = append(results, mixedResults(wl, "dovecot-tuned", r.m, r.rss, note(r, "SHA512-CRYPT, login high-performance mode"))[0])
	}
	return results, ctx.Err()
}

// resyncRow makes the table row of one server's resync passes: the rate is
// messages per second of the median pass; p50 and p99 are the median and
// the slowest pass.
func resyncRow(workload, server string, times []time.Duration, n int) benchkit.Result {
	times = slices.Clone(times)
	slices.Sort(times)
	med := times[len(times)/2]
	note := fmt.Sprintf("median/slowest of %d passes", len(times))
	if server == "kreide" {
		note = joinNote(note, "encrypted at rest")
	}
	return benchkit.Result{Workload: workload, Server: server, Unit: "messages", Ops: float64(n), Elapsed: med,
		P50: med, P99: times[len(times)-1], Note: note}
}

// memNote describes a server's memory beyond the peak RSS column: the
// number of processes (their RSS is summed, shared pages once per process),
// the proportional set size, and the anonymous part (without mapped files
// such as kreide's databases, which the kernel can drop and read again).
func memNote(m benchkit.TreePeak) string {
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	if m.Procs <= 1 {
		return fmt.Sprintf("anon %.1f MiB", mib(m.Anon))
	}
	return fmt.Sprintf("RSS summed over up to %d processes (PSS %.1f MiB, anon %.1f MiB)", m.Procs, mib(m.PSS), mib(m.Anon))
}

// loadAvg is the machine's load average over the last minute, for the
// notes: other work on a shared machine shows there.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return "load " + strings.Fields(string(b))[0]
}

// SMTP delivers 10 KiB messages from another server to local users: kreide
// on its port-25 listener against Postfix handing them to Dovecot over
// LMTP.
func SMTP(ctx context.Context, o benchkit.Options) ([]benchkit.Result, error) {
	sz := sizesFor(o.Quick)
	logf := logger(o)
	tmp, cleanup, err := tempDir("kreide-bench-smtp-", logf)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	users := userNames(sz.users)
	wl := fmt.Sprintf("SMTP inbound (%d conns, 10 KiB)", sz.smtpConns)

	dnsNote, resolvConf := "DNS: stub", ""
	if stub, err := startDNSStub(tmp); err != nil {
		dnsNote = "DNS: this machine's resolver"
		logf("no DNS stub (%v): kreide uses this machine's resolver", err)
	} else {
		defer stub.close()
		if err := checkPrivateResolvConf(stub.resolvConf); err != nil {
			dnsNote = "DNS: this machine's resolver"
			logf("no private resolv.conf (%v): kreide uses this machine's resolver", err)
		} else {
			resolvConf = stub.resolvConf
		}
	}
	logf("starting kreide and creating %d accounts", len(users))
	k, err := startKreide(ctx, mkdir(tmp, "kreide"), users, benchPassword, resolvConf)
	if err != nil {
		return nil, err
	}
	defer k.stop()

	peerNote := ""
	var pf *postfixServer
	d, err := prepareDovecot(ctx, mkdir(tmp, "dovecot"), users, benchPassword)
	if err == nil {
		err = d.start(ctx)
		if err == nil {
			defer d.stop()
			pf, err = startPostfix(ctx, mkdir(tmp, "postfix"), users, d.lmtpAddr)
			if err == nil {
				defer pf.stop()
			}
		}
	}
	if err != nil {
		pf = nil
		if errors.Is(err, errNotInstalled) || errors.Is(err, errNeedsRoot) {
			peerNote = err.Error()
		} else {
			peerNote = "postfix+dovecot did not start"
			logf("peer: %v", err)
		}
	}

	// Rounds taking turns; the best round of each counts.
	type run struct {
		res              benchkit.Result
		sent, errs       int
		firstErr, detail string
	}
	kreideRound := func() run {
		logf("%s: kreide, %d messages (%s)", wl, sz.smtpMessages, loadAvg())
		load := loadAvg()
		w, t := benchkit.WatchRSS(k.pid()), benchkit.WatchTreeRSS(k.pid())
		r := smtpLoad(ctx, k.smtpAddr, users, sz.smtpConns, sz.smtpMessages)
		rss, mem := w.Stop(), t.Stop()
		logf("  kreide: %d messages in %v", r.sent, r.lastSent.Sub(r.start).Round(time.Millisecond))
		return run{sent: r.sent, errs: r.errs, firstErr: r.firstErr, detail: joinNote(load, memNote(mem)),
			res: benchkit.Result{Workload: wl, Server: "kreide", Unit: "messages", Ops: float64(r.sent),
				Elapsed: r.lastSent.Sub(r.start), P50: r.lat.Percentile(50), P99: r.lat.Percentile(99), PeakRSS: rss}}
	}
	var dirs []string
	if pf != nil {
		for _, u := range users {
			dirs = append(dirs, d.maildir(u))
		}
	}
	peerRound := func() run {
		logf("%s: postfix+dovecot, %d messages (%s)", wl, sz.smtpMessages, loadAvg())
		load := loadAvg()
		before := countMaildirs(dirs)
		twp, twd := benchkit.WatchTreeRSS(pf.pid()), benchkit.WatchTreeRSS(d.pid())
		r := smtpLoad(ctx, pf.smtpAddr, users, sz.smtpConns, sz.smtpMessages)
		last, n, werr := waitMaildirs(ctx, dirs, before+r.sent, 5*time.Minute)
		mp, md := twp.Stop(), twd.Stop()
		mem := benchkit.TreePeak{RSS: mp.RSS + md.RSS, PSS: mp.PSS + md.PSS, Anon: mp.Anon + md.Anon, Procs: mp.Procs + md.Procs}
		rssP, rssD := mp.RSS, md.RSS
		detail := joinNote(load, memNote(mem))
		if werr != nil {
			detail = joinNote(detail, werr.Error())
		}
		logf("  postfix+dovecot: %d accepted in %v, %d in the Maildirs after %v", r.sent, r.lastSent.Sub(r.start).Round(time.Millisecond),
			n-before, last.Sub(r.start).Round(time.Millisecond))
		return run{sent: r.sent, errs: r.errs, firstErr: r.firstErr, detail: detail,
			res: benchkit.Result{Workload: wl, Server: "postfix+dovecot", Unit: "messages", Ops: float64(n - before),
				Elapsed: last.Sub(r.start), P50: r.lat.Percentile(50), P99: r.lat.Percentile(99), PeakRSS: rssP + rssD}}
	}
	var bestK, bestP run
	sentK := 0
	for range sz.rounds {
		r := kreideRound()
		sentK += r.sent
		if bestK.res.Server == "" || r.res.Rate() > bestK.res.Rate() {
			bestK = r
		}
		if pf != nil {
			if r := peerRound(); bestP.res.Server == "" || r.res.Rate() > bestP.res.Rate() {
				bestP = r
			}
		}
	}
	rounds := ""
	if sz.rounds > 1 {
		rounds = fmt.Sprintf("best of %d rounds", sz.rounds)
	}
	finish := func(r run, note string) benchkit.Result {
		r.res.Note = joinNote(joinNote(note, rounds), r.detail)
		if r.errs > 0 {
			r.res.Note = joinNote(r.res.Note, fmt.Sprintf("%d failed (first: %s)", r.errs, r.firstErr))
		}
		return r.res
	}
	noteK := "SPF/DKIM/DMARC checked (" + dnsNote + "); sealed to each account's public key; 250 after fsync"
	if n, err := countKreide(k.imapAddr, users); err != nil || n != sentK {
		noteK = joinNote(noteK, fmt.Sprintf("only %d of %d in the mailboxes (%v)", n, sentK, err))
	}
	results := []benchkit.Result{finish(bestK, noteK)}
	if pf == nil {
		return append(results, benchkit.Result{Workload: wl, Server: "postfix+dovecot", Note: peerNote}), ctx.Err()
	}
	return append(results, finish(bestP, "delivered = in the Maildir; no SPF/DKIM/DMARC")), ctx.Err()
}

// countKreide counts the messages in the users' INBOXes (IMAP STATUS).
func countKreide(addr string, users []string) (int, error) {
	n := 0
	for _, u := range users {
		c, err := dialLogin(addr, u, benchPassword)
		if err != nil {
			return n, err
		}
		st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
		c.Close()
		if err != nil {
			return n, err
		}
		n += int(*st.NumMessages)
	}
	return n, nil
}

// tempDir makes the directory for a suite's servers. With
// KREIDE_BENCH_KEEP=1 in the environment it is kept afterwards, with the
// servers' configs and logs, for a look at what they did.
func tempDir(prefix string, logf func(string, ...any)) (string, func(), error) {
	tmp, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	// Dovecot's and Postfix's processes run as their own users and must
	// reach their files below it.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", nil, err
	}
	if os.Getenv("KREIDE_BENCH_KEEP") == "1" {
		return tmp, func() { logf("kept %s (KREIDE_BENCH_KEEP=1)", tmp) }, nil
	}
	return tmp, func() { os.RemoveAll(tmp) }, nil
}

func mkdir(parent, name string) string {
	p := filepath.Join(parent, name)
	os.MkdirAll(p, 0o755)
	return p
}

// parallel runs fn for every user, all at once, and returns the first
// error.
func parallel(users []string, fn func(u string) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(users))
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(u)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
