// Package metrics exports kreide's Prometheus metrics and health check on the admin listener
// (config listen.admin, plain HTTP: keep it on a private address):
//
//	GET /metrics   Prometheus text format
//	GET /healthz   200 "ok" when the store answers, 503 and the error otherwise
//
// Each Server has its own registry (no global state). The protocol packages contain no metrics code:
//
//   - Connections are counted by wrapping each listener (Listener): kreide_connections_total and
//     kreide_connections_open, labelled with the listen key without "listen." (imap, imaps, smtp,
//     submission, submissions, https, admin).
//   - Logins and failed logins (kreide_logins_total{proto, result}) come from a hook on the store's
//     Login when the store has one (Login), otherwise failed IMAP and SMTP logins are counted from the
//     structured log events the protocols already write (Logger).
//   - Deliveries, queued messages, remote failures and rejections come from those log events too
//     (events.go lists them; a test in protocols pins their messages).
//   - The queue length and the number of accounts are read from the store at each scrape.
//   - HTTP request latency: HTTP wraps a handler (kreide_http_request_duration_seconds).
//   - Go runtime and process metrics (go_*, process_*).
package metrics

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options connect the metrics to the store. Every field is optional.
type Options struct {
	// QueueLength returns the number of messages in the outbound queue.
	QueueLength func(ctx context.Context) (int, error)
	// Accounts returns the number of accounts.
	Accounts func(ctx context.Context) (int, error)
	// Health returns nil when the store answers.
	Health func(ctx context.Context) error
}

// scrapeTimeout bounds each store question asked during a scrape or health check.
const scrapeTimeout = 5 * time.Second

// Metrics holds one server's metrics.
type Metrics struct {
	o   Options
	reg *prometheus.Registry

	connections      *prometheus.CounterVec
	open             *prometheus.GaugeVec
	logins           *prometheus.CounterVec
	deliveries       *prometheus.CounterVec
	deliveryFailures *prometheus.CounterVec
	queued           prometheus.Counter
	rejected         *prometheus.CounterVec
	httpDuration     *prometheus.HistogramVec
	commandDuration  *prometheus.HistogramVec

	// loginHook is set once the store reports logins itself (Login); then
	// failed logins are no longer counted from log events.
	loginHook atomic.Bool
}

// New creates the metrics and registers them in a new registry.
func New(o Options) *Metrics {
	m := &Metrics{
		o:   o,
		reg: prometheus.NewRegistry(),
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kreide_connections_total",
			Help: "Connections accepted, by listener (the listen key without \"listen.\").",
		}, []string{"listener"}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kreide_connections_open",
			Help: "Connections open now, by listener.",
		}, []string{"listener"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kreide_logins_total",
			Help: "Login attempts by protocol (imap, smtp, dav) and result (ok, failed: wrong user name or password).",
		}, []string{"proto", "result"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kreide_deliveries_total",
			Help: "Messages delivered: inbound (from other servers into mailboxes), local (sent by a user to local mailboxes), remote (sent by a user, taken by another server).",
		}, []string{"path"}),
		deliveryFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kreide_delivery_failures_total",
			Help: "Failed delivery attempts: inbound (could not be stored), local, remote (another server refused or could not be reached; retried later).",
		}, []string{"path"}),
		queued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kreide_queued_total",
			Help: "Messages put in the outbound queue for other servers.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kreide_smtp_rejected_total",
			Help: "Inbound SMTP transactions refused, by reason (dmarc, relay).",
		}, []string{"reason"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kreide_http_request_duration_seconds",
			Help:    "Latency of HTTP requests (CalDAV, CardDAV, WebDAV, autoconfig), by handler, method and status code.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"handler", "method", "code"}),
		commandDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kreide_command_duration_seconds",
			Help:    "Latency of IMAP commands, by command and result (ok, no: refused or failed); the count is the number of commands.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10},
		}, []string{"proto", "command", "result"}),
	}
	m.reg.MustRegister(m.connections, m.open, m.logins, m.deliveries, m.deliveryFailures, m.queued, m.rejected, m.httpDuration, m.commandDuration)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if o.QueueLength != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kreide_queue_messages",
			Help: "Messages waiting in the outbound queue (NaN when the store did not answer).",
		}, storeGauge(o.QueueLength)))
	}
	if o.Accounts != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kreide_accounts",
			Help: "Number of accounts (NaN when the store did not answer).",
		}, storeGauge(o.Accounts)))
	}
	// Zero values, so that dashboards and rate() see the series from the start.
	for _, p := range []string{"imap", "smtp", "dav"} {
		m.logins.WithLabelValues(p, "ok")
		m.logins.WithLabelValues(p, "failed")
	}
	for _, p := range []string{"inbound", "local", "remote"} {
		m.deliveries.WithLabelValues(p)
		m.deliveryFailures.WithLabelValues(p)
	}
	return m
}

func storeGauge(fn func(ctx context.Context) (int, error)) func() float64 {
	return func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
		defer cancel()
		n, err := fn(ctx)
		if err != nil {
			return math.NaN()
		}
		return float64(n)
	}
}

// Registry is where the metrics are registered (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Command records one protocol command and how long it took.
func (m *Metrics) Command(proto, command string, d time.Duration, ok bool) {
	result := "ok"
	if !ok {
		result = "no"
	}
	m.commandDuration.WithLabelValues(proto, command, result).Observe(d.Seconds())
}

// Login counts one login attempt of proto ("imap", "smtp", "dav"): ok, or failed because of a wrong user
// name or password. Calling it tells Metrics that the store reports logins, so failed logins are no
// longer counted from log events.
func (m *Metrics) Login(proto string, ok bool) {
	m.loginHook.Store(true)
	result := "failed"
	if ok {
		result = "ok"
	}
	m.logins.WithLabelValues(proto, result).Inc()
}

// LoginHookInstalled tells Metrics that Login will be called for every login, before any is.
func (m *Metrics) LoginHookInstalled() { m.loginHook.Store(true) }

// Handler serves /metrics and /healthz.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", m.healthz)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "kreide admin listener: /metrics (Prometheus), /healthz\n")
	})
	return mux
}

func (m *Metrics) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if m.o.Health != nil {
		ctx, cancel := context.WithTimeout(r.Context(), scrapeTimeout)
		defer cancel()
		if err := m.o.Health(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "store: %v\n", err)
			return
		}
	}
	fmt.Fprint(w, "ok\n")
}

// webdavMethods are the HTTP methods of WebDAV, CalDAV and CardDAV, counted by name (others are
// "unknown", so that clients cannot create label values at will).
var webdavMethods = []string{"PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "REPORT", "MKCALENDAR", "ACL", "SEARCH"}

// HTTP measures the latency of the requests h serves, labelled with name (e.g. "dav").
func (m *Metrics) HTTP(name string, h http.Handler) http.Handler {
	obs := m.httpDuration.MustCurryWith(prometheus.Labels{"handler": name})
	return promhttp.InstrumentHandlerDuration(obs, h, promhttp.WithExtraMethods(webdavMethods...))
}

// Listener counts the connections ln accepts under the label name.
func (m *Metrics) Listener(name string, ln net.Listener) net.Listener {
	return &listener{Listener: ln, total: m.connections.WithLabelValues(name), open: m.open.WithLabelValues(name)}
}

type listener struct {
	net.Listener
	total prometheus.Counter
	open  prometheus.Gauge
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.total.Inc()
	l.open.Inc()
	return &conn{Conn: c, open: l.open}, nil
}

// conn decrements the open gauge once, at the first Close.
type conn struct {
	net.Conn
	open prometheus.Gauge
	once sync.Once
}

func (c *conn) Close() error {
	c.once.Do(c.open.Dec)
	return c.Conn.Close()
}
