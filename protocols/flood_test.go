package protocols

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kreide/config"
	"kreide/store/storetest"
)

// floodConns is how many hostile connections TestFlood opens.
const floodConns = 300

// A flood behaviour writes its junk on c and returns; the connection then
// stays open (or is closed by the server) until the test ends.
type floodBehaviour struct {
	name string
	key  string // listen key
	tls  bool   // implicit TLS listener: the junk goes inside TLS
	junk func(c net.Conn)
}

var floodBehaviours = []floodBehaviour{
	{"imap idle", "listen.imap", false, func(net.Conn) {}},
	{"imap 1 MiB line", "listen.imap", false, func(c net.Conn) { writeJunk(c, strings.Repeat("A", 1<<20)) }},
	{"imap huge literal in LOGIN", "listen.imap", false, func(c net.Conn) { writeJunk(c, "a LOGIN {999999999}\r\n") }},
	{"imap unauthenticated APPEND", "listen.imap", false, func(c net.Conn) {
		writeJunk(c, "a APPEND INBOX {1000000000+}\r\n"+strings.Repeat("x", 256<<10))
	}},
	{"imap 2000 bad commands", "listen.imap", false, func(c net.Conn) { writeJunk(c, strings.Repeat("x NOPE\r\n", 2000)) }},
	{"imap deep parentheses", "listen.imap", false, func(c net.Conn) {
		writeJunk(c, "a SEARCH "+strings.Repeat("(", 40000)+"\r\n")
	}},
	{"imaps half a TLS handshake", "listen.imaps", false, func(c net.Conn) { writeJunk(c, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03") }},
	{"imaps junk after handshake", "listen.imaps", true, func(c net.Conn) { writeJunk(c, strings.Repeat("B", 256<<10)) }},
	{"smtp idle", "listen.smtp", false, func(net.Conn) {}},
	{"smtp 1 MiB line", "listen.smtp", false, func(c net.Conn) { writeJunk(c, strings.Repeat("C", 1<<20)) }},
	{"smtp DATA dribble", "listen.smtp", false, func(c net.Conn) {
		writeJunk(c, "EHLO flood.example\r\nMAIL FROM:<x@flood.example>\r\nRCPT TO:<anna@example.org>\r\nDATA\r\nSubject: flood\r\n\r\n"+strings.Repeat("y", 64<<10))
	}},
	{"smtp huge BDAT", "listen.smtp", false, func(c net.Conn) {
		writeJunk(c, "EHLO flood.example\r\nMAIL FROM:<x@flood.example>\r\nRCPT TO:<anna@example.org>\r\nBDAT 4000000000\r\n"+strings.Repeat("z", 64<<10))
	}},
	{"submission AUTH garbage", "listen.submission", false, func(c net.Conn) {
		writeJunk(c, "EHLO flood.example\r\nAUTH PLAIN "+strings.Repeat("QUFB", 100000)+"\r\n")
	}},
	{"submission 5000 RCPTs unauthenticated", "listen.submission", false, func(c net.Conn) {
		writeJunk(c, "EHLO flood.example\r\n"+strings.Repeat("RCPT TO:<a@example.org>\r\n", 5000))
	}},
	{"https huge header", "listen.https", true, func(c net.Conn) {
		writeJunk(c, "GET /files/ HTTP/1.1\r\nHost: x\r\nX: "+strings.Repeat("h", 1<<20)+"\r\n\r\n")
	}},
	{"https half a header", "listen.https", true, func(c net.Conn) { writeJunk(c, "PROPFIND /dav/ HTTP/1.1\r\nHost: x\r\n") }},
}

// writeJunk writes s without waiting forever: the server may stop reading.
func writeJunk(c net.Conn, s string) {
	c.SetWriteDeadline(time.Now().Add(3 * time.Second))
	io.WriteString(c, s)
	c.SetWriteDeadline(time.Time{})
}

// TestFlood: 300 hostile connections (idle, over-long lines, huge literals
// and BDAT announcements, half TLS handshakes, oversized HTTP headers) from
// 30 addresses at the default per-address connection limit; meanwhile a
// user logs in, appends, fetches and submits mail as usual. The heap
// growth of this process (server and clients) stays bounded.
func TestFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test skipped in -short mode")
	}
	dir := storetest.Open(t)
	newUser(t, dir, anna, annaPass)
	ls := startLive(t, dir, func(c *config.Config) { c.Limits.MaxConnsPerIP = config.Default().Limits.MaxConnsPerIP })

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	goroutinesBefore := runtime.NumGoroutine()

	start := time.Now()
	var (
		wg                 sync.WaitGroup
		mu                 sync.Mutex
		conns              []net.Conn
		dialFailed, closed atomic.Int32
	)
	perAddr := 10
	var from string
	for i := range floodConns {
		if i%perAddr == 0 {
			from = otherLoopback()
		}
		b := floodBehaviours[i%len(floodBehaviours)]
		wg.Add(1)
		go func(from string) {
			defer wg.Done()
			d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
			c, err := d.Dial("tcp", ls.addr(b.key))
			if err != nil {
				dialFailed.Add(1)
				return
			}
			if b.tls {
				tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
				tc.SetDeadline(time.Now().Add(5 * time.Second))
				if tc.Handshake() != nil {
					c.Close()
					closed.Add(1)
					return
				}
				tc.SetDeadline(time.Time{})
				c = tc
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			b.junk(c)
			// Drain what the server answers, so that it is not blocked
			// writing to us; note when it hangs up.
			go func() {
				if _, err := io.Copy(io.Discard, c); err == nil || !isClosedByUs(err) {
					closed.Add(1)
				}
			}()
		}(from)
	}
	wg.Wait()
	t.Logf("%d hostile connections opened in %v (%d dials refused)", floodConns, time.Since(start).Round(time.Millisecond), dialFailed.Load())

	// A user works normally meanwhile.
	userStart := time.Now()
	floodUserSession(t, ls)
	t.Logf("normal IMAP + SMTP session during the flood took %v", time.Since(userStart).Round(time.Millisecond))

	var during runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&during)
	growth := int64(during.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap: %.1f MiB before, %.1f MiB with the flood open (growth %.1f MiB, peak HeapSys %.1f MiB); goroutines %d -> %d; server hung up on %d of them",
		mib(before.HeapAlloc), mib(during.HeapAlloc), float64(growth)/(1<<20), mib(during.HeapSys), goroutinesBefore, runtime.NumGoroutine(), closed.Load())
	if growth > 256<<20 {
		t.Fatalf("heap grew by %.1f MiB under %d hostile connections, want < 256 MiB", float64(growth)/(1<<20), floodConns)
	}
	mu.Lock()
	for _, c := range conns {
		c.Close()
	}
	mu.Unlock()
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

func isClosedByUs(err error) bool {
	return strings.Contains(err.Error(), "use of closed network connection")
}

// floodUserSession: IMAP LOGIN, APPEND, SELECT, FETCH; SMTP submission;
// each must work and answer in reasonable time.
func floodUserSession(t *testing.T, ls *liveServer) {
	t.Helper()
	msg := crlf("From: anna@example.org\nTo: anna@example.org\nSubject: during the flood\n\nstill here\n")
	lc := ls.imapLogin(t, anna, annaPass)
	if _, st := lc.imap("APPEND INBOX " + imapLiteral(msg)); !strings.HasPrefix(st, "OK") {
		t.Fatalf("APPEND during flood: %s", st)
	}
	if _, st := lc.imap("SELECT INBOX"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("SELECT during flood: %s", st)
	}
	all, st := lc.imap("UID FETCH 1:* BODY.PEEK[]")
	if !strings.HasPrefix(st, "OK") || !strings.Contains(all, "still here") {
		t.Fatalf("FETCH during flood: %s\n%s", st, all)
	}
	lc.imap("LOGOUT")

	sc := dialLine(t, ls.addr("listen.submission"))
	sc.smtpReply()
	sc.smtp("EHLO client.example.org")
	auth := base64.StdEncoding.EncodeToString([]byte("\x00" + anna + "\x00" + annaPass))
	for _, step := range []struct{ cmd, want string }{
		{"AUTH PLAIN " + auth, "235"},
		{"MAIL FROM:<" + anna + ">", "250"},
		{"RCPT TO:<" + anna + ">", "250"},
		{"DATA", "354"},
		{msg + ".", "250"},
		{"QUIT", "221"},
	} {
		if r := sc.smtp(step.cmd); !strings.HasPrefix(r, step.want) {
			t.Fatalf("SMTP %q during flood: %s", strings.SplitN(step.cmd, "\r", 2)[0], r)
		}
	}
	code, body := ls.do(ls.httpClient(), davReq{method: "PROPFIND", path: "/files/", user: anna, pass: annaPass, hdr: map[string]string{"Depth": "1"}})
	if code != 207 {
		t.Fatalf("PROPFIND during flood: %d %s", code, body)
	}
	fmt.Fprint(io.Discard, body)
}
