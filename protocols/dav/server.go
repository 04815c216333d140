// Package dav is kreide's HTTPS frontend: it routes CalDAV and CardDAV
// (protocols/dav/caldav), WebDAV files (protocols/dav/webdav) and the
// well-known discovery URLs, behind one authentication middleware.
package dav

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"kreide/protocols/autoconfig"
	"kreide/protocols/connlimit"
	"kreide/protocols/dav/caldav"
	"kreide/protocols/dav/davauth"
	"kreide/protocols/dav/webdav"
	"kreide/store"
)

// Options configure the DAV server.
type Options struct {
	Dir *store.Directory
	TLS *tls.Config
	// AllowPlaintext reports whether Basic credentials may cross a
	// connection without TLS (kreide: loopback only).
	AllowPlaintext  func(remoteAddr string) bool
	MaxUploadSize   int64 // WebDAV PUT
	MaxResourceSize int64 // one calendar object or contact
	Logger          *slog.Logger
	// Autoconfig, when set, serves client autoconfiguration on this server.
	Autoconfig *autoconfig.Handler
	// StallTimeout drops a request whose body or response makes no progress
	// for this long (0: 2 minutes; stall.go).
	StallTimeout time.Duration
	// Middleware, when set, wraps the whole router (kreide: request metrics).
	Middleware func(http.Handler) http.Handler
	// MaxConnsPerIP caps simultaneous connections from one address (0: no
	// cap).
	MaxConnsPerIP int
}

// Server serves DAV over HTTP(S).
type Server struct {
	srv      *http.Server
	maxPerIP int
	log      *slog.Logger
	dropped  atomic.Int64
}

// New builds the server and its routes.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxResourceSize <= 0 {
		o.MaxResourceSize = 10 << 20
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = defaultStallTimeout
	}
	h := stallGuard(o.StallTimeout, Handler(o))
	if o.Middleware != nil {
		h = o.Middleware(h)
	}
	return &Server{maxPerIP: o.MaxConnsPerIP, log: o.Logger, srv: &http.Server{
		Handler:           h,
		TLSConfig:         o.TLS,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
	}}
}

// Handler is the router, exposed for tests.
func Handler(o Options) http.Handler {
	auth := davauth.Middleware(davauth.Options{Dir: o.Dir, AllowPlaintext: o.AllowPlaintext, Realm: "kreide"})
	mux := http.NewServeMux()
	pim := auth(caldav.NewHandler(caldav.Options{Prefix: "/dav/", MaxResourceSize: o.MaxResourceSize, Logger: o.Logger}))
	files := auth(webdav.NewHandler(webdav.Options{Prefix: "/files/", MaxUploadSize: o.MaxUploadSize, Logger: o.Logger}))
	if o.Autoconfig != nil {
		o.Autoconfig.Register(mux, auth)
	}
	mux.Handle("/dav/", pim)
	mux.Handle("/files/", files)
	mux.Handle("/files", files) // no redirect: PROPFIND clients handle 301 badly
	// RFC 6764: clients find the CalDAV and CardDAV context path here.
	for _, p := range []string{"/.well-known/caldav", "/.well-known/carddav"} {
		mux.Handle(p, http.RedirectHandler("/dav/", http.StatusMovedPermanently))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/" && r.Method == http.MethodOptions:
			// Windows' WebDAV redirector and Office probe the root first.
			w.Header().Set("DAV", "1, 2, 3, calendar-access, addressbook")
			w.Header().Set("MS-Author-Via", "DAV")
			w.Header().Set("Allow", "OPTIONS, GET, HEAD, PROPFIND")
			w.WriteHeader(http.StatusOK)
		case r.URL.Path == "/" && r.Method == "PROPFIND":
			// iOS, given only a host name, asks the root for
			// current-user-principal: answer as the CalDAV root does.
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/dav/"
			pim.ServeHTTP(w, r2)
		case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte("kreide: use a CalDAV, CardDAV or WebDAV client (calendars: /dav/, files: /files/)\n"))
		default:
			http.NotFound(w, r)
		}
	})
	return mux
}

// ServeTLS serves HTTPS on ln.
func (s *Server) ServeTLS(ln net.Listener) error {
	err := s.srv.Serve(tls.NewListener(s.limit(ln), s.srv.TLSConfig))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Serve serves plain HTTP on ln (loopback tests, or behind a TLS proxy).
func (s *Server) Serve(ln net.Listener) error {
	err := s.srv.Serve(s.limit(ln))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// limit applies Options.MaxConnsPerIP to ln: a connection over it is closed
// at once (HTTP clients retry). Refusals are logged once per hundred, so a
// flood does not flood the log too.
func (s *Server) limit(ln net.Listener) net.Listener {
	if s.maxPerIP <= 0 {
		return ln
	}
	return connlimit.Listener(ln, connlimit.New(s.maxPerIP), func(c net.Conn, ip string) {
		c.Close()
		if s.dropped.Add(1)%100 == 1 {
			s.log.Warn("dav: too many connections from one address, refusing", "remote", ip, "refused_so_far", s.dropped.Load())
		}
	})
}

// Close stops the server, letting requests in flight finish for a while.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
