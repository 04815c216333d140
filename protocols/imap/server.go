package imap

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"kreide/protocols/connlimit"
	"kreide/protocols/tlsconf"
	"kreide/store"
)

// Options configure a Server. Dir is required.
type Options struct {
	Dir *store.Directory
	// TLS is used for STARTTLS and implicit TLS (ServeTLS). Without it,
	// STARTTLS is not offered.
	TLS *tls.Config
	// MaxMessageSize is the APPENDLIMIT: larger APPENDs are refused before
	// their literal is read (0: 64 MiB).
	MaxMessageSize int64
	// AllowPlaintext reports whether a connection may log in without TLS
	// (kreide: loopback peers only, see Loopback). Nil: never.
	AllowPlaintext func(c net.Conn) bool
	// MaxConnsPerIP and MaxConnsPerUser limit concurrent connections from one
	// address and to one account (0: no limit; schools often share one NAT
	// address, so the per-IP limit should be generous).
	MaxConnsPerIP, MaxConnsPerUser int
	// OnCommand, when set, hears of every command with its duration and
	// whether it succeeded (kreide: metrics). It must be quick.
	OnCommand func(command string, d time.Duration, ok bool)
	// Logger receives errors and notable events (nil: slog.Default()).
	Logger *slog.Logger
}

// Loopback is the AllowPlaintext rule kreide uses: plaintext logins only
// from this machine.
func Loopback(c net.Conn) bool { return tlsconf.IsLoopback(c.RemoteAddr()) }

const defaultMaxMessageSize = 64 << 20

// timeouts of idle connections; tests shorten them.
type timeouts struct {
	unauth time.Duration // not logged in: between commands and overall per read
	auth   time.Duration // logged in, between commands
	idle   time.Duration // during IDLE
}

var defaultTimeouts = timeouts{unauth: time.Minute, auth: 30 * time.Minute, idle: 35 * time.Minute}

// Server serves IMAP over any number of listeners.
type Server struct {
	o        Options
	log      *slog.Logger
	timeouts timeouts

	// imap serves every connection; TLS, STARTTLS and whether a
	// connection may log in are frontConn's business (see wire.go).
	imap *imapserver.Server
	ln   *chanListener

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	sessions  sync.WaitGroup

	perIP, perUser *connlimit.Counter
}

// New returns a server; call Serve or ServeTLS to accept connections.
func New(o Options) *Server {
	if o.Dir == nil {
		panic("imap: Options.Dir is required")
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = defaultMaxMessageSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Server{
		o:         o,
		log:       o.Logger,
		timeouts:  defaultTimeouts,
		listeners: make(map[net.Listener]struct{}),
		perIP:     connlimit.New(o.MaxConnsPerIP),
		perUser:   connlimit.New(o.MaxConnsPerUser),
		ln:        newChanListener(),
	}
	caps := imap.CapSet{}
	for _, c := range []imap.Cap{
		imap.CapIMAP4rev1, imap.CapIMAP4rev2, imap.CapNamespace, imap.CapUIDPlus, imap.CapESearch,
		imap.CapSearchRes, imap.CapListExtended, imap.CapListStatus, imap.CapMove, imap.CapStatusSize,
		imap.CapBinary, imap.CapChildren, imap.CapSpecialUse, imap.CapCreateSpecialUse, imap.CapLiteralPlus, imap.CapUnauthenticate,
	} {
		caps[c] = struct{}{}
	}
	s.imap = imapserver.New(&imapserver.Options{
		NewSession: s.newSession,
		Caps:       caps,
		Logger:     printfLogger{s.log},
		// frontConn refuses LOGIN and AUTHENTICATE without TLS and does
		// STARTTLS itself; imapserver sees neither.
		InsecureAuth: true,
	})
	go s.imap.Serve(s.ln)
	// imapserver.Serve registers itself before its first Accept; Close must
	// not race with that registration.
	<-s.ln.accepting
	return s
}

// Serve accepts plaintext connections (port 143): clients must STARTTLS
// before logging in, unless AllowPlaintext allows them.
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, false) }

// ServeTLS accepts connections and speaks TLS on them at once (port 993).
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.o.TLS == nil {
		return errors.New("imap: ServeTLS needs Options.TLS")
	}
	return s.serve(ln, true)
}

func (s *Server) serve(ln net.Listener, implicitTLS bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: wait and retry, as
			// net/http does, rather than stop serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("imap: accept failed, retrying", "err", err, "delay", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		go s.handle(c, implicitTLS)
	}
}

func (s *Server) handle(c net.Conn, implicitTLS bool) {
	ip := connlimit.Host(c.RemoteAddr())
	if !s.perIP.Acquire(ip) {
		s.log.Info("imap: too many connections", "remote", ip)
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("* BYE [UNAVAILABLE] Too many connections from your address\r\n"))
		c.Close()
		return
	}
	tc := &trackedConn{Conn: c, s: s, ip: ip}
	tc.Conn.SetReadDeadline(time.Now().Add(s.timeouts.unauth)) // also bounds the TLS handshake
	var inner net.Conn = tc
	if implicitTLS {
		inner = tls.Server(tc, s.o.TLS)
	}
	allowPlain := s.o.AllowPlaintext != nil && s.o.AllowPlaintext(c)
	fc := newFrontConn(s, tc, inner, implicitTLS, allowPlain)
	if !s.ln.deliver(fc) {
		fc.Close()
	}
}

// Close stops accepting, closes every connection and waits (a few
// seconds at most) for their sessions to release their accounts.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	s.imap.Close()
	done := make(chan struct{})
	go func() {
		s.sessions.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.log.Warn("imap: sessions still running after Close")
	}
	return nil
}

func (s *Server) appendLimit() uint32 {
	return uint32(min(s.o.MaxMessageSize, math.MaxUint32))
}

// trackedConn is the raw connection under imapserver (and under TLS). It
// counts the connection against its address until closed, and it decides
// read deadlines: imapserver asks for 30 s before login and 35 min after;
// kreide wants 1 min before login, 30 min between commands after login,
// and 35 min while IDLE.
type trackedConn struct {
	net.Conn
	s         *Server
	ip        string
	authed    atomic.Bool
	mu        sync.Mutex // orders deadline changes against IDLE start
	idling    bool
	closeOnce sync.Once
}

func (c *trackedConn) SetReadDeadline(t time.Time) error {
	if t.IsZero() {
		return c.Conn.SetReadDeadline(t)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	to := c.s.timeouts
	switch {
	case !c.authed.Load():
		t = time.Now().Add(to.unauth)
	case c.idling:
		t = time.Now().Add(to.idle)
	case time.Until(t) > 10*time.Minute: // imapserver waiting for the next command
		t = time.Now().Add(to.auth)
	}
	return c.Conn.SetReadDeadline(t)
}

// Read drops the connection when a read deadline passes. (imapserver
// would otherwise read on with a fresh 30 s command deadline after its
// between-commands deadline expired.)
func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		c.Close()
	}
	return n, err
}

func (c *trackedConn) setIdle(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idling = on
	to := c.s.timeouts.auth
	if on {
		to = c.s.timeouts.idle
	}
	c.Conn.SetReadDeadline(time.Now().Add(to))
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() { c.s.perIP.Release(c.ip) })
	return err
}

// chanListener hands accepted connections to an imapserver.Server.
type chanListener struct {
	c         chan net.Conn
	done      chan struct{}
	once      sync.Once
	accepting chan struct{} // closed at the first Accept
	started   sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{c: make(chan net.Conn), done: make(chan struct{}), accepting: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) bool {
	select {
	case l.c <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	l.started.Do(func() { close(l.accepting) })
	select {
	case c := <-l.c:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{} }

// printfLogger adapts slog to imapserver's logger. imapserver reports every
// dropped connection as an error; those are debug noise, panics are not.
type printfLogger struct{ l *slog.Logger }

func (p printfLogger) Printf(format string, args ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, args...))
	switch {
	case strings.Contains(msg, "panic"):
		p.l.Error("imap: " + msg)
	case strings.HasPrefix(msg, "failed to read command"), strings.HasPrefix(msg, "failed to write greeting"):
		p.l.Debug("imap: " + msg)
	case strings.Contains(msg, "imapwire: "):
		// A client's command over the parser's limits (50 KiB, nesting):
		// imapserver answers NO [SERVERBUG] but nothing went wrong here.
		p.l.Info("imap: command refused by the parser: " + msg)
	default:
		p.l.Warn("imap: " + msg)
	}
}
