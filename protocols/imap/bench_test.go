package imap

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"kreide/store/storetest"
)

// BenchmarkUIDFetchFlags10k measures `UID FETCH 1:* (FLAGS)` on a mailbox
// of 10,000 messages: time to the first response byte and to the tagged OK.
func BenchmarkUIDFetchFlags10k(b *testing.B) {
	benchFetch10k(b, "UID FETCH 1:* (FLAGS)")
}

// BenchmarkUIDFetchHeaders10k is what Thunderbird asks after SELECT: a few
// header fields of every message (served from the sealed header cache).
func BenchmarkUIDFetchHeaders10k(b *testing.B) {
	benchFetch10k(b, "UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date Message-ID References In-Reply-To Content-Type)])")
}

// BenchmarkUIDFetchEnvelope10k checks that FETCH ENVELOPE, which needs no
// header block, does not pay for the header cache.
func BenchmarkUIDFetchEnvelope10k(b *testing.B) {
	benchFetch10k(b, "UID FETCH 1:* (UID FLAGS ENVELOPE)")
}

// benchConn is a raw IMAP connection for benchmarks; readUntil reads
// responses up to the tagged one, skipping literals, and counts untagged
// responses.
type benchConn struct {
	b  *testing.B
	nc net.Conn
	r  *bufio.Reader
}

func dialBench(b *testing.B, e *testEnv) *benchConn {
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nc.Close() })
	c := &benchConn{b: b, nc: nc, r: bufio.NewReaderSize(nc, 64<<10)}
	c.r.ReadString('\n')
	fmt.Fprintf(nc, "l LOGIN %s %q\r\ns SELECT INBOX\r\n", testUser, testPass)
	c.readUntil("l")
	c.readUntil("s")
	return c
}

func (c *benchConn) readUntil(tag string) int {
	n := 0
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.b.Fatal(err)
		}
		if i := strings.LastIndexByte(l, '{'); i >= 0 && strings.HasSuffix(l, "}\r\n") {
			var size int64
			fmt.Sscanf(l[i+1:], "%d", &size)
			if _, err := c.r.Discard(int(size)); err != nil {
				c.b.Fatal(err)
			}
			continue // the rest of the response follows the literal
		}
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				c.b.Fatal(l)
			}
			return n
		}
		n++
	}
}

func benchFetch10k(b *testing.B, command string) {
	e := newEnv(b)
	start := time.Now()
	bulkAppend(b, e.acct, "INBOX", 10000, func(i int) string { return fmt.Sprintf("Nachricht %05d", i) })
	b.Logf("appended 10,000 messages in %v", time.Since(start))
	c := dialBench(b, e)
	var ttfb, total time.Duration
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		fmt.Fprintf(c.nc, "f %s\r\n", command)
		if _, err := c.r.Peek(1); err != nil {
			b.Fatal(err)
		}
		ttfb += time.Since(t0)
		if n := c.readUntil("f"); n != 10000 {
			b.Fatalf("%d responses", n)
		}
		total += time.Since(t0)
	}
	b.ReportMetric(float64(ttfb.Microseconds())/float64(b.N)/1000, "ms-first-byte")
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms-total")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N)/1000, "cpu-ms")
}

// cpuTime is the process's CPU time (server and client): steadier than
// wall time on a busy machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkExpunge10k measures EXPUNGE in a mailbox of 10,000 messages of
// which one has \Deleted (the STORE that sets it is not timed). All have
// \Seen, as in a real mailbox: their flags are sealed records.
func BenchmarkExpunge10k(b *testing.B) {
	e := newEnv(b)
	bulkAppend(b, e.acct, "INBOX", 10000+b.N, func(i int) string { return fmt.Sprintf("Nachricht %05d", i) })
	c := dialBench(b, e)
	fmt.Fprintf(c.nc, "s STORE 1:* +FLAGS.SILENT (\\Seen)\r\n")
	c.readUntil("s")
	var total, cpu time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fmt.Fprintf(c.nc, "s STORE %d +FLAGS.SILENT (\\Deleted)\r\n", 1+i*7%(10000-i))
		c.readUntil("s")
		t0, cpu0 := time.Now(), cpuTime()
		fmt.Fprintf(c.nc, "x EXPUNGE\r\n")
		if n := c.readUntil("x"); n != 1 {
			b.Fatalf("%d responses to EXPUNGE", n)
		}
		total += time.Since(t0)
		cpu += cpuTime() - cpu0
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms-expunge")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N)/1000, "cpu-ms")
}

// BenchmarkMixedWorkload50 runs 50 clients (10 users, 5 connections each)
// doing what mail clients do: log in, select, fetch flags and bodies,
// store flags, append, expunge, log out. It reports commands per second.
func BenchmarkMixedWorkload50(b *testing.B) {
	e := newEnv(b)
	users := make([]string, 10)
	for i := range users {
		users[i] = fmt.Sprintf("user%d@example.org", i)
		a, _ := storetest.User(b, e.dir, users[i], testPass)
		bulkAppend(b, a, "INBOX", 200, func(j int) string { return fmt.Sprintf("Nachricht %d", j) })
	}
	msg := simpleMessage("Neu", strings.Repeat("Hausaufgaben für Montag. ", 80))
	var commands atomic.Int64
	var failures atomic.Int64
	var wg sync.WaitGroup
	work := make(chan struct{}, 1024)
	client := func(id int) {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(uint64(id), 7))
		for {
			c, err := imapclient.DialInsecure(e.addr, nil)
			if err != nil {
				failures.Add(1)
				return
			}
			count := func(err error) bool {
				commands.Add(1)
				if err != nil {
					failures.Add(1)
				}
				_, ok := <-work
				return ok
			}
			ok := count(c.Login(users[id%len(users)], testPass).Wait())
			var n uint32
			if ok {
				data, err := c.Select("INBOX", nil).Wait()
				if err == nil {
					n = data.NumMessages
				}
				ok = count(err)
			}
			for i := 0; ok && i < 20 && n > 0; i++ {
				seq := uint32(rng.IntN(int(n))) + 1
				var err error
				switch op := rng.IntN(10); {
				case op < 3:
					_, err = c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true}).Collect()
				case op < 6:
					_, err = c.Fetch(imap.SeqSetNum(seq), &imap.FetchOptions{Envelope: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
				case op < 8:
					err = c.Store(imap.SeqSetNum(seq), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close()
				case op < 9:
					cmd := c.Append("INBOX", int64(len(msg)), nil)
					cmd.Write(msg)
					cmd.Close()
					_, err = cmd.Wait()
				default:
					c.Store(imap.SeqSetNum(seq), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
					err = c.Expunge().Close()
				}
				ok = count(err)
				if c.Mailbox() != nil {
					n = c.Mailbox().NumMessages
				}
			}
			c.Logout().Wait()
			c.Close()
			if !ok {
				return
			}
		}
	}
	b.ResetTimer()
	start := time.Now()
	for i := range 50 {
		wg.Add(1)
		go client(i)
	}
	for i := 0; i < b.N; i++ {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	b.ReportMetric(float64(commands.Load())/elapsed.Seconds(), "commands/s")
	if f := failures.Load(); f > 0 {
		b.Errorf("%d commands failed", f)
	}
}
