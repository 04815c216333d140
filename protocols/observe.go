package protocols

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"kreide/protocols/metrics"
	"kreide/protocols/smtp"
	"kreide/protocols/tlsconf"
	"kreide/store"
)

// The admin listener (listen.admin: Prometheus metrics and a health check),
// the metrics wiring, and what serve's control socket needs of the running
// server.

// adminFrontend serves /metrics and /healthz over plain HTTP.
var adminFrontend = frontend{
	name: "admin",
	keys: []string{"listen.admin"},
	start: func(e *env, lns map[string]net.Listener, serve func(string, func() error)) io.Closer {
		hs := &http.Server{
			Handler:           e.metrics.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			MaxHeaderBytes:    16 << 10,
		}
		if ln := lns["listen.admin"]; ln != nil {
			serve("listen.admin", func() error {
				if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
					return err
				}
				return nil
			})
		}
		return closerFunc(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return hs.Shutdown(ctx)
		})
	},
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// loginHooker is a store that reports every login attempt. store.Directory
// does once it has SetLoginHook (see protocols/metrics); until then failed
// logins are counted from log events.
type loginHooker interface {
	SetLoginHook(func(scope store.Scope, ok bool))
}

// newMetrics creates the server's metrics over dir.
func newMetrics(dir *store.Directory) *metrics.Metrics {
	m := metrics.New(metrics.Options{
		QueueLength: func(ctx context.Context) (int, error) {
			msgs, err := dir.Queue().List(ctx)
			return len(msgs), err
		},
		Accounts: dir.CountAccounts,
		Health: func(ctx context.Context) error {
			_, err := dir.CountAccounts(ctx)
			return err
		},
	})
	if h, ok := any(dir).(loginHooker); ok {
		m.LoginHookInstalled()
		h.SetLoginHook(func(scope store.Scope, ok bool) { m.Login(string(scope), ok) })
	}
	return m
}

// prefetchCertificate obtains the ACME certificate for hostname in the
// background now that the HTTPS listener serves, rather than at the first
// client's connection. It gives up when the server stops.
func (s *Server) prefetchCertificate(ctx context.Context, tc *tls.Config, hostname string) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-s.stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	go tlsconf.Prefetch(ctx, tc, hostname, s.logger.With("proto", "tls"))
}

// SMTP is the running SMTP frontend, whose outbound queue serve's control
// socket acts on (admin.Server.SetQueue), or nil when no SMTP listener is
// configured.
func (s *Server) SMTP() *smtp.Server {
	for _, c := range s.closers {
		if q, ok := c.(*smtp.Server); ok {
			return q
		}
	}
	return nil
}
