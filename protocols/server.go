// Package protocols runs kreide's network frontends (IMAP, SMTP, later DAV)
// over one store.Directory. Each frontend lives in its own package; this file
// only opens the listeners the config asks for and starts and stops the
// frontends on them.
package protocols

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"kreide/config"
	"kreide/protocols/autoconfig"
	"kreide/protocols/dav"
	"kreide/protocols/dav/davauth"
	"kreide/protocols/imap"
	"kreide/protocols/metrics"
	"kreide/protocols/smtp"
	"kreide/protocols/tlsconf"
	"kreide/store"
)

// stopTimeout bounds how long Close waits for frontends to finish.
const stopTimeout = 15 * time.Second

// env is what every frontend is built from.
type env struct {
	cfg    *config.Config
	dir    *store.Directory
	tls    *tls.Config // nil when no certificate is configured and none is needed
	logger *slog.Logger
	// allowPlaintext says whether a password may be sent on conn without
	// TLS (config auth.allow_plaintext).
	allowPlaintext func(conn net.Conn) bool
	// metrics counts connections and events for listen.admin (observe.go).
	metrics *metrics.Metrics
	// ports are the bound port of each open listener, by listen key: what
	// client autoconfiguration tells clients.
	ports map[string]int
}

// A frontend serves one protocol family on some of the [listen] addresses.
// Adding a protocol is adding one entry to frontends.
type frontend struct {
	name string
	keys []string // the listen keys it serves, e.g. "listen.imap"
	// start builds the frontend and serves each listener it got (only the
	// configured ones are in lns) with serve, which runs fn in its own
	// goroutine. The returned Closer stops the frontend and its connections.
	start func(e *env, lns map[string]net.Listener, serve func(key string, fn func() error)) io.Closer
}

// frontends is the table of protocol frontends.
var frontends = []frontend{
	imapFrontend,
	smtpFrontend,
	davFrontend,
	adminFrontend,
}

// imapFrontend serves IMAP with STARTTLS and over TLS.
var imapFrontend = frontend{
	name: "imap",
	keys: []string{"listen.imap", "listen.imaps"},
	start: func(e *env, lns map[string]net.Listener, serve func(string, func() error)) io.Closer {
		srv := imap.New(imap.Options{
			Dir:            e.dir,
			TLS:            e.tls,
			MaxMessageSize: int64(e.cfg.Limits.MaxMessageSize),
			AllowPlaintext: e.allowPlaintext,
			MaxConnsPerIP:  e.cfg.Limits.MaxConnsPerIP,
			Logger:         e.logger.With("proto", "imap"),
			OnCommand: func(cmd string, d time.Duration, ok bool) {
				e.metrics.Command("imap", cmd, d, ok)
			},
		})
		if ln := lns["listen.imap"]; ln != nil {
			serve("listen.imap", func() error { return srv.Serve(ln) })
		}
		if ln := lns["listen.imaps"]; ln != nil {
			serve("listen.imaps", func() error { return srv.ServeTLS(ln) })
		}
		return srv
	},
}

// smtpFrontend serves mail from other servers (MX) and submission by users,
// and runs the outbound queue.
var smtpFrontend = frontend{
	name: "smtp",
	keys: []string{"listen.smtp", "listen.submission", "listen.submissions"},
	start: func(e *env, lns map[string]net.Listener, serve func(string, func() error)) io.Closer {
		srv := smtp.New(smtp.Options{
			Dir:            e.dir,
			Hostname:       e.cfg.Hostname,
			TLS:            e.tls,
			MaxMessageSize: int64(e.cfg.Limits.MaxMessageSize),
			MaxRecipients:  e.cfg.Limits.MaxRecipients,
			MaxConnsPerIP:  e.cfg.Limits.MaxConnsPerIP,
			AllowPlaintext: e.allowPlaintext,
			Logger:         e.logger,
		})
		if ln := lns["listen.smtp"]; ln != nil {
			serve("listen.smtp", func() error { return srv.ServeMX(ln) })
		}
		if ln := lns["listen.submission"]; ln != nil {
			serve("listen.submission", func() error { return srv.ServeSubmission(ln) })
		}
		if ln := lns["listen.submissions"]; ln != nil {
			serve("listen.submissions", func() error { return srv.ServeSubmissions(ln) })
		}
		return srv
	},
}

// davFrontend serves CalDAV, CardDAV, WebDAV files and client
// autoconfiguration over HTTPS.
var davFrontend = frontend{
	name: "dav",
	keys: []string{"listen.https"},
	start: func(e *env, lns map[string]net.Listener, serve func(string, func() error)) io.Closer {
		ac := autoconfig.New(autoconfig.Options{
			Hostname: e.cfg.Hostname, Domains: e.cfg.Domains, Dir: e.dir, Logger: e.logger.With("proto", "autoconfig"),
			IMAPS: e.ports["listen.imaps"], IMAP: e.ports["listen.imap"], Submissions: e.ports["listen.submissions"],
			Submission: e.ports["listen.submission"], HTTPS: e.ports["listen.https"],
		})
		srv := dav.New(dav.Options{
			Dir: e.dir,
			TLS: tlsconf.HTTPS(e.cfg, e.tls), // with tls.acme: the TLS-ALPN-01 challenge
			AllowPlaintext: func(remote string) bool {
				return e.cfg.Auth.AllowPlaintext == config.PlaintextLoopback && davauth.IsLoopback(remote)
			},
			MaxUploadSize: int64(e.cfg.Limits.MaxUploadSize),
			MaxConnsPerIP: e.cfg.Limits.MaxConnsPerIP,
			Logger:        e.logger.With("proto", "dav"),
			Autoconfig:    ac,
			Middleware:    func(h http.Handler) http.Handler { return e.metrics.HTTP("dav", h) },
		})
		if ln := lns["listen.https"]; ln != nil {
			serve("listen.https", func() error { return srv.ServeTLS(ln) })
		}
		return srv
	},
}

// listenKeys maps each [listen] key to its address in the config and what it
// is, in the order they are opened.
var listenKeys = []struct {
	key, what string
	addr      func(l *config.Listen) string
}{
	{"listen.imap", "IMAP (STARTTLS)", func(l *config.Listen) string { return l.IMAP }},
	{"listen.imaps", "IMAP over TLS", func(l *config.Listen) string { return l.IMAPS }},
	{"listen.smtp", "SMTP from other mail servers", func(l *config.Listen) string { return l.SMTP }},
	{"listen.submission", "SMTP submission (STARTTLS)", func(l *config.Listen) string { return l.Submission }},
	{"listen.submissions", "SMTP submission over TLS", func(l *config.Listen) string { return l.Submissions }},
	{"listen.https", "CalDAV, CardDAV, WebDAV over HTTPS", func(l *config.Listen) string { return l.HTTPS }},
	{"listen.admin", "metrics and health checks", func(l *config.Listen) string { return l.Admin }},
}

// Served reports whether this build has a frontend for the listen key
// ("listen.https"), so callers only advertise what actually answers.
func Served(key string) bool { return served(frontends, key) }

func served(fes []frontend, key string) bool {
	for _, f := range fes {
		for _, k := range f.keys {
			if k == key {
				return true
			}
		}
	}
	return false
}

// Server is a running set of frontends. Start makes one; Serve is Start and Wait.
type Server struct {
	logger    *slog.Logger
	addrs     map[string]net.Addr
	listeners []net.Listener
	closers   []io.Closer

	wg       sync.WaitGroup
	mu       sync.Mutex
	stopping bool
	err      error // first unexpected frontend failure
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	closeErr error
}

// Serve loads the TLS certificate, opens every configured listener, and
// serves until ctx is cancelled; then it closes everything gracefully. A
// listener that cannot be opened is an error before anything is served, e.g.
//
//	listen.imap 127.0.0.1:1143: address already in use
func Serve(ctx context.Context, cfg *config.Config, dir *store.Directory, logger *slog.Logger) error {
	s, err := Start(ctx, cfg, dir, logger)
	if err != nil {
		return err
	}
	return s.Wait()
}

// Start is the first half of Serve: it returns once every listener is open
// and every frontend runs. The server stops when ctx is cancelled, when Close
// is called, or when a frontend fails; Wait waits for that.
func Start(ctx context.Context, cfg *config.Config, dir *store.Directory, logger *slog.Logger) (*Server, error) {
	return start(ctx, cfg, dir, logger, frontends)
}

// start is Start with a given table of frontends (tests use their own).
func start(ctx context.Context, cfg *config.Config, dir *store.Directory, logger *slog.Logger, fes []frontend) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tlsCfg, err := tlsconf.LoadWith(cfg, tlsconf.Options{Logger: logger.With("proto", "tls")})
	if errors.Is(err, tlsconf.ErrNoCertificate) {
		// Validate allows this only when no listener needs TLS.
		tlsCfg, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	e := &env{cfg: cfg, dir: dir, tls: tlsCfg, metrics: newMetrics(dir), ports: make(map[string]int)}
	e.logger = e.metrics.Logger(logger) // counts the events frontends log
	plaintextLoopback := cfg.Auth.AllowPlaintext == config.PlaintextLoopback
	e.allowPlaintext = func(c net.Conn) bool {
		if _, isTLS := c.(*tls.Conn); isTLS {
			return true
		}
		return plaintextLoopback && tlsconf.IsLoopback(c.RemoteAddr())
	}

	s := &Server{
		logger: logger,
		addrs:  make(map[string]net.Addr),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}

	// Open every listener before serving anything, so a busy port stops the
	// start with nothing half running.
	byKey := make(map[string]net.Listener)
	var lc net.ListenConfig
	for _, lk := range listenKeys {
		addr := lk.addr(&cfg.Listen)
		if addr == "" {
			continue
		}
		if !served(fes, lk.key) {
			logger.Warn("not listening: this version of kreide does not serve it yet", "key", lk.key, "addr", addr, "protocol", lk.what)
			continue
		}
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			s.closeListeners()
			return nil, listenError(lk.key, addr, err)
		}
		ln = e.metrics.Listener(strings.TrimPrefix(lk.key, "listen."), ln)
		s.listeners = append(s.listeners, ln)
		s.addrs[lk.key] = ln.Addr()
		byKey[lk.key] = ln
		if a, ok := ln.Addr().(*net.TCPAddr); ok {
			e.ports[lk.key] = a.Port
		}
	}

	for _, f := range fes {
		lns := make(map[string]net.Listener)
		for _, k := range f.keys {
			if ln := byKey[k]; ln != nil {
				lns[k] = ln
			}
		}
		if len(lns) == 0 {
			continue
		}
		c := f.start(e, lns, s.serve)
		s.closers = append(s.closers, c)
		for _, lk := range listenKeys {
			if ln := lns[lk.key]; ln != nil {
				logger.Info("listening", "key", lk.key, "addr", ln.Addr().String(), "protocol", lk.what)
			}
		}
	}

	if cfg.TLS.ACME && tlsCfg != nil {
		s.prefetchCertificate(ctx, tlsCfg, cfg.Hostname) // observe.go
	}

	go func() {
		select {
		case <-ctx.Done():
		case <-s.stop:
		}
		s.shutdown()
	}()
	return s, nil
}

// listenError turns a failed listen into one line naming the config key:
// "listen.imap 127.0.0.1:1143: address already in use".
func listenError(key, addr string, err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if errno == syscall.EACCES {
			return fmt.Errorf("%s %s: %w (ports below 1024 need root or the CAP_NET_BIND_SERVICE capability)", key, addr, errno)
		}
		return fmt.Errorf("%s %s: %w", key, addr, errno)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		return fmt.Errorf("%s %s: %w", key, addr, opErr.Err)
	}
	return fmt.Errorf("%s %s: %w", key, addr, err)
}

// serve runs one frontend's serve loop. Its return is expected only while
// stopping; any other return is a failure that stops the whole server.
func (s *Server) serve(key string, fn func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := fn()
		s.mu.Lock()
		stopping := s.stopping
		if !stopping {
			if err == nil {
				err = errors.New("stopped unexpectedly")
			}
			err = fmt.Errorf("%s: %w", key, err)
			if s.err == nil {
				s.err = err
			}
		}
		s.mu.Unlock()
		if !stopping {
			s.logger.Error("frontend failed; stopping kreide", "key", key, "err", err)
			s.Close()
		}
	}()
}

// Addr is the address the listener of key ("listen.imap") is bound to, or
// nil if it is not open. With port 0 in the config this is the real port.
func (s *Server) Addr(key string) net.Addr { return s.addrs[key] }

// Close stops the server, like cancelling Start's ctx.
func (s *Server) Close() {
	s.stopOnce.Do(func() { close(s.stop) })
}

// Wait waits until the server has stopped and every frontend has finished.
// It returns nil after a requested stop, or the failure that stopped it.
func (s *Server) Wait() error {
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	return s.closeErr
}

func (s *Server) shutdown() {
	defer close(s.done)
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	s.logger.Info("stopping")
	// Stop accepting first, then close the frontends and their sessions.
	s.closeListeners()
	var errs []error
	for _, c := range s.closers {
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	finished := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(stopTimeout):
		errs = append(errs, fmt.Errorf("frontends did not stop within %v", stopTimeout))
	}
	s.mu.Lock()
	s.closeErr = errors.Join(errs...)
	s.mu.Unlock()
	s.logger.Info("stopped")
}

func (s *Server) closeListeners() {
	for _, ln := range s.listeners {
		ln.Close()
	}
}
