package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"kreide/protocols/connlimit"
	"kreide/store"
)

// Options configure a Server. Dir and TLS are what a real server needs; every
// other field has a default.
type Options struct {
	Dir *store.Directory
	// Hostname is the server's name in greetings, Received fields, the
	// Authentication-Results authserv-id and DSNs (default: os.Hostname).
	Hostname string
	// TLS serves STARTTLS (25, 587) and implicit TLS (465). Without it, 587
	// accepts AUTH only where AllowPlaintext says so and 465 cannot serve.
	TLS *tls.Config

	MaxMessageSize int64 // bytes (default 50 MiB)
	MaxRecipients  int   // per message (default 100)
	MaxConnsPerIP  int   // concurrent connections from one address, all ports together (default 20)
	// MaxFailedRcpts is how many rejected RCPTs a connection may send before
	// it is closed (default 10): it slows address harvesting.
	MaxFailedRcpts int

	// AllowPlaintext permits AUTH on a connection without TLS when it returns
	// true (kreide: loopback only). Nil: never.
	AllowPlaintext func(c net.Conn) bool
	// Resolver answers DNS questions (default net.DefaultResolver).
	Resolver Resolver
	Logger   *slog.Logger

	// SaveSent also files a copy of every submitted message into the
	// sender's Sent mailbox. Off by default: Thunderbird, Apple Mail, Outlook
	// and phone clients save their own copy over IMAP, so this would double it.
	SaveSent bool

	// Outbound delivery (the queue).

	// RemotePort is the port of remote MTAs (default 25; tests change it).
	RemotePort int
	// OutboundTLS is the client configuration for opportunistic STARTTLS to
	// remote MTAs. Default: encrypt without verifying the certificate, as
	// opportunistic TLS does (RFC 7435); a failed handshake is retried once
	// without TLS.
	OutboundTLS *tls.Config
	// QueueLifetime is how long a message is retried before it bounces
	// (default 5 days).
	QueueLifetime time.Duration
	// RetryBase is the first retry delay; each later one doubles, up to
	// RetryMax (defaults 2 minutes and 4 hours).
	RetryBase, RetryMax time.Duration
	// MaxDeliveries bounds concurrent outbound connections (default 16);
	// MaxPerDomain bounds those to one destination domain (default 2).
	MaxDeliveries, MaxPerDomain int
	// DisableQueue keeps the queue runner from starting (tools that only
	// inspect the queue).
	DisableQueue bool
}

func (o *Options) setDefaults() error {
	if o.Dir == nil {
		return errors.New("smtp: Options.Dir is required")
	}
	if o.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("smtp: no Hostname and %w", err)
		}
		o.Hostname = h
	}
	o.Hostname = strings.ToLower(strings.TrimSuffix(o.Hostname, "."))
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = 50 << 20
	}
	if o.MaxRecipients <= 0 {
		o.MaxRecipients = 100
	}
	if o.MaxConnsPerIP <= 0 {
		o.MaxConnsPerIP = 20
	}
	if o.MaxFailedRcpts <= 0 {
		o.MaxFailedRcpts = 10
	}
	if o.AllowPlaintext == nil {
		o.AllowPlaintext = func(net.Conn) bool { return false }
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.RemotePort <= 0 {
		o.RemotePort = 25
	}
	if o.OutboundTLS == nil {
		// Opportunistic TLS: better than clear text against passive
		// listeners; MTA-STS or DANE would be needed to verify.
		o.OutboundTLS = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
	}
	if o.QueueLifetime <= 0 {
		o.QueueLifetime = 5 * 24 * time.Hour
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 2 * time.Minute
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 4 * time.Hour
	}
	if o.MaxDeliveries <= 0 {
		o.MaxDeliveries = 16
	}
	if o.MaxPerDomain <= 0 {
		o.MaxPerDomain = 2
	}
	return nil
}

// Server is kreide's SMTP service: inbound MX, submission, and the outbound
// queue that runs in the background from New until Close.
type Server struct {
	o     Options
	log   *slog.Logger
	ctx   context.Context // cancelled by Close
	stop  context.CancelFunc
	conns *connlimit.Counter
	queue *queueRunner

	mu       sync.Mutex
	servers  []*gosmtp.Server
	closed   bool
	inflight sync.WaitGroup // DATA commands being handled
}

// enter registers a DATA command; false once the server is closing.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.inflight.Add(1)
	return true
}

// New returns a server and starts its outbound queue. It panics on invalid
// options only when Dir is missing; other gaps get defaults.
func New(o Options) *Server {
	if err := o.setDefaults(); err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{o: o, log: o.Logger.With("proto", "smtp"), ctx: ctx, stop: cancel, conns: connlimit.New(o.MaxConnsPerIP)}
	s.queue = newQueueRunner(s)
	if !o.DisableQueue {
		s.queue.start()
	}
	return s
}

type mode int

const (
	modeMX mode = iota
	modeSubmission
)

func (m mode) String() string {
	if m == modeMX {
		return "mx"
	}
	return "submission"
}

func (s *Server) newSMTP(m mode, tlsConf *tls.Config) (*gosmtp.Server, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, gosmtp.ErrServerClosed
	}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return s.newSession(m, c), nil
	}))
	srv.Domain = s.o.Hostname
	srv.TLSConfig = tlsConf
	srv.MaxMessageBytes = s.o.MaxMessageSize
	srv.MaxRecipients = s.o.MaxRecipients
	srv.EnableSMTPUTF8 = true
	srv.ReadTimeout = 5 * time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = slogLogger{s.log.With("mode", m.String())}
	// AUTH is decided per connection (TLS or AllowPlaintext) by the session,
	// which advertises no mechanism where it is not allowed.
	srv.AllowInsecureAuth = m == modeSubmission
	s.servers = append(s.servers, srv)
	return srv, nil
}

// ServeMX serves inbound mail (port 25) on ln until Close: STARTTLS when TLS
// is configured, no AUTH, only recipients of served domains.
func (s *Server) ServeMX(ln net.Listener) error {
	srv, err := s.newSMTP(modeMX, s.o.TLS)
	if err != nil {
		return err
	}
	return srv.Serve(s.listener(ln, false))
}

// ServeSubmission serves message submission with STARTTLS (port 587).
func (s *Server) ServeSubmission(ln net.Listener) error {
	srv, err := s.newSMTP(modeSubmission, s.o.TLS)
	if err != nil {
		return err
	}
	return srv.Serve(s.listener(ln, false))
}

// ServeSubmissions serves message submission over implicit TLS (port 465, RFC 8314).
func (s *Server) ServeSubmissions(ln net.Listener) error {
	if s.o.TLS == nil {
		return errors.New("smtp: implicit TLS needs Options.TLS")
	}
	srv, err := s.newSMTP(modeSubmission, s.o.TLS)
	if err != nil {
		return err
	}
	return srv.Serve(tls.NewListener(s.listener(ln, true), s.o.TLS))
}

// Close stops the listeners and closes open connections, waits for messages
// being stored, then stops the queue (outbound deliveries in progress are
// abandoned and retried at the next start).
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	servers := s.servers
	s.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		if err := srv.Close(); err != nil && !errors.Is(err, gosmtp.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	s.inflight.Wait()
	s.stop()
	s.queue.wait()
	return errors.Join(errs...)
}

// slogLogger lets go-smtp report internal errors through slog.
type slogLogger struct{ l *slog.Logger }

func (l slogLogger) Printf(format string, v ...any) { l.l.Warn(fmt.Sprintf(format, v...)) }
func (l slogLogger) Println(v ...any)               { l.l.Warn(strings.TrimSpace(fmt.Sprintln(v...))) }
