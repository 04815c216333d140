package mail

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"kreide/bench/benchkit"
)

// The IMAP clients: filling a server over APPEND, the Thunderbird-like
// resync and the mixed workload. The same code drives kreide and Dovecot.

// dialLogin connects without TLS (both servers allow passwords in clear on
// loopback) and logs in.
func dialLogin(addr, u, password string) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return nil, err
	}
	if err := c.Login(u, password).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("login %s: %w", u, err)
	}
	return c, nil
}

// appendAll stores messages 0..n-1 of every user in their INBOX over IMAP
// APPEND, with their flags and internal dates, over conns connections per
// user at once (so that kreide can share fsyncs between them, as it would
// between several clients).
func appendAll(ctx context.Context, addr string, users []string, password string, n, conns int, progress func(done int)) error {
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(users)*conns)
	for _, u := range users {
		for j := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := dialLogin(addr, u, password)
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				for i := j; i < n; i += conns {
					if ctx.Err() != nil {
						errs <- ctx.Err()
						return
					}
					m := makeMessage(u, i)
					flags := make([]imap.Flag, len(m.flags))
					for k, f := range m.flags {
						flags[k] = imap.Flag(f)
					}
					cmd := c.Append("INBOX", int64(len(m.raw)), &imap.AppendOptions{Flags: flags, Time: m.date})
					cmd.Write(m.raw)
					cmd.Close()
					if _, err := cmd.Wait(); err != nil {
						errs <- fmt.Errorf("APPEND to %s: %w", u, err)
						return
					}
					if d := done.Add(1); d%5000 == 0 && progress != nil {
						progress(int(d))
					}
				}
				c.Logout().Wait()
			}()
		}
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// resyncFields are the header fields Thunderbird asks for when it builds
// its message list.
var resyncFields = []string{"From", "To", "Cc", "Subject", "Date", "Message-ID", "References", "In-Reply-To", "Content-Type"}

// resync does what Thunderbird does with a mailbox it has not cached:
// SELECT, UID FETCH 1:* (UID FLAGS), then UID FETCH 1:* (UID RFC822.SIZE
// FLAGS BODY.PEEK[HEADER.FIELDS (...)]), reading every response. It returns
// the time from SELECT to the last response and the number of messages.
func resync(addr, u, password string) (time.Duration, int, error) {
	c, err := dialLogin(addr, u, password)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	start := time.Now()
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: false}).Wait()
	if err != nil {
		return 0, 0, err
	}
	all := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
	n1, err := drain(c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true}))
	if err != nil {
		return 0, 0, fmt.Errorf("UID FETCH (UID FLAGS): %w", err)
	}
	n2, err := drain(c.Fetch(all, &imap.FetchOptions{UID: true, RFC822Size: true, Flags: true,
		BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader, HeaderFields: resyncFields, Peek: true}}}))
	if err != nil {
		return 0, 0, fmt.Errorf("UID FETCH (HEADER.FIELDS): %w", err)
	}
	elapsed := time.Since(start)
	if n1 != int(sel.NumMessages) || n2 != n1 {
		return 0, 0, fmt.Errorf("%s: SELECT said %d messages, FETCH returned %d and %d", u, sel.NumMessages, n1, n2)
	}
	c.Logout().Wait()
	return elapsed, n1, nil
}

// drain reads every response of a FETCH, literals included, and counts the
// messages.
func drain(cmd *imapclient.FetchCommand) (int, error) {
	n := 0
	for cmd.Next() != nil {
		n++
	}
	return n, cmd.Close()
}

// warmUp runs one resync of every user, four at a time: Dovecot builds its
// index and cache files, and both servers get their files into the page
// cache, as on a server that has been running for a while.
func warmUp(addr string, users []string, password string) error {
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	var first error
	var mu sync.Mutex
	for _, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, _, err := resync(addr, u, password); err != nil {
				mu.Lock()
				first = firstErr(first, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// mixedCommands are the commands of one mixed-workload session, in order.
var mixedCommands = []string{"LOGIN", "SELECT", "FETCH", "STORE", "APPEND", "EXPUNGE", "LOGOUT"}

// connectRow times connecting up to the server's greeting: no command, but
// where a server that starts processes per connection spends its time.
const connectRow = "(connect)"

// mixedResult is what the mixed workload measured.
type mixedResult struct {
	elapsed time.Duration
	lat     map[string]*benchkit.Latencies
	all     *benchkit.Latencies
	errs    map[string]int
	firstEr string
}

// rate is commands per second.
func (r *mixedResult) rate() float64 { return float64(r.all.Count()) / r.elapsed.Seconds() }

func (r *mixedResult) errors() int {
	n := 0
	for _, v := range r.errs {
		n += v
	}
	return n
}

// mixed runs clients concurrent clients for dur; client i works as
// users[i % len(users)]. Each session: LOGIN, SELECT INBOX, FETCH (FLAGS
// ENVELOPE) of 50 consecutive messages from a random place, STORE +FLAGS
// or -FLAGS \Seen on one of them, APPEND a 4 KiB message, STORE +FLAGS
// \Deleted on another and EXPUNGE (so the mailbox keeps its size), LOGOUT;
// then the next session, until dur is over. A session begun keeps going to
// its end.
func mixed(ctx context.Context, addr string, users []string, password string, clients int, dur time.Duration) *mixedResult {
	r := &mixedResult{lat: map[string]*benchkit.Latencies{}, all: &benchkit.Latencies{}, errs: map[string]int{}}
	for _, c := range append(mixedCommands, connectRow) {
		r.lat[c] = &benchkit.Latencies{}
	}
	var mu sync.Mutex
	fail := func(cmd string, err error) {
		mu.Lock()
		r.errs[cmd]++
		if r.firstEr == "" {
			r.firstEr = cmd + ": " + err.Error()
		}
		mu.Unlock()
	}
	var appended atomic.Int64
	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := users[i%len(users)]
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if err := mixedSession(addr, u, password, rng, r, &appended); err != nil {
					fail(err.cmd, err.err)
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	return r
}

type cmdError struct {
	cmd string
	err error
}

func mixedSession(addr, u, password string, rng *rand.Rand, r *mixedResult, appended *atomic.Int64) *cmdError {
	t0 := time.Now()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return &cmdError{connectRow, err}
	}
	defer c.Close()
	if err := c.WaitGreeting(); err != nil {
		return &cmdError{connectRow, err}
	}
	r.lat[connectRow].Add(time.Since(t0)) // not a command: not in r.all
	timed := func(name string, fn func() error) *cmdError {
		t := time.Now()
		err := fn()
		d := time.Since(t)
		if err != nil {
			return &cmdError{name, err}
		}
		r.lat[name].Add(d)
		r.all.Add(d)
		return nil
	}
	if e := timed("LOGIN", func() error { return c.Login(u, password).Wait() }); e != nil {
		return e
	}
	var n uint32
	if e := timed("SELECT", func() error {
		d, err := c.Select("INBOX", nil).Wait()
		if err == nil {
			n = d.NumMessages
		}
		return err
	}); e != nil {
		return e
	}
	if n < 60 {
		return &cmdError{"SELECT", fmt.Errorf("only %d messages in INBOX", n)}
	}
	from := uint32(rng.IntN(int(n)-50)) + 1
	if e := timed("FETCH", func() error {
		// Fewer than 50 may come back: another client of the same
		// user may have expunged some meanwhile.
		_, err := drain(c.Fetch(imap.SeqSet{{Start: from, Stop: from + 49}}, &imap.FetchOptions{Flags: true, Envelope: true}))
		return err
	}); e != nil {
		return e
	}
	op := imap.StoreFlagsAdd
	if rng.IntN(2) == 0 {
		op = imap.StoreFlagsDel
	}
	if e := timed("STORE", func() error {
		return c.Store(imap.SeqSetNum(from+uint32(rng.IntN(50))), &imap.StoreFlags{Op: op, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close()
	}); e != nil {
		return e
	}
	msg := newMessage("bench@sender.example", u, int(appended.Add(1)), 4<<10)
	if e := timed("APPEND", func() error {
		cmd := c.Append("INBOX", int64(len(msg)), nil)
		cmd.Write(msg)
		cmd.Close()
		_, err := cmd.Wait()
		return err
	}); e != nil {
		return e
	}
	if e := timed("STORE", func() error {
		return c.Store(imap.SeqSetNum(uint32(rng.IntN(int(n)))+1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
	}); e != nil {
		return e
	}
	if e := timed("EXPUNGE", func() error { return c.Expunge().Close() }); e != nil {
		return e
	}
	return timed("LOGOUT", func() error { return c.Logout().Wait() })
}

// mixedResults turns a run into table rows: the whole mix, then one row
// per command (its own count over the same time), after one for connecting
// (not counted as a command).
func mixedResults(workload, server string, m *mixedResult, rss int64, note string) []benchkit.Result {
	if n := m.errors(); n > 0 {
		keys := make([]string, 0, len(m.errs))
		for k := range m.errs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		note = joinNote(note, fmt.Sprintf("%d failed commands (%v; first: %s)", n, keys, m.firstEr))
	}
	rs := []benchkit.Result{{Workload: workload, Server: server, Unit: "commands", Ops: float64(m.all.Count()),
		Elapsed: m.elapsed, P50: m.all.Percentile(50), P99: m.all.Percentile(99), PeakRSS: rss, Note: note}}
	for _, c := range append([]string{connectRow}, mixedCommands...) {
		l := m.lat[c]
		unit := "commands"
		if c == connectRow {
			unit = "connections"
		}
		rs = append(rs, benchkit.Result{Workload: workload + ": " + c, Server: server, Unit: unit, Ops: float64(l.Count()),
			Elapsed: m.elapsed, P50: l.Percentile(50), P99: l.Percentile(99)})
	}
	return rs
}

func joinNote(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
