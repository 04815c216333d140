package metrics

import (
	"context"
	"log/slog"
)

// Counting log events. The protocols log what happens as structured events; a handler in front of the
// server's log handler counts the ones below, so that no protocol package needs metrics code. An event is
// recognized by its message and the "proto" attribute of its logger. A test in package protocols drives
// real sessions and checks that the counters move, so a renamed message is noticed.

// event is one log message that a counter counts.
type event struct {
	proto, msg string
}

// events maps each counted log event to what it counts.
var events = map[event]func(m *Metrics){
	{"imap", "imap: login failed"}:    func(m *Metrics) { m.loginFailedFromLog("imap") },
	{"smtp", "authentication failed"}: func(m *Metrics) { m.loginFailedFromLog("smtp") },
	{"smtp", "delivered"}:             func(m *Metrics) { m.deliveries.WithLabelValues("inbound").Inc() },
	{"smtp", "delivery failed"}:       func(m *Metrics) { m.deliveryFailures.WithLabelValues("inbound").Inc() },
	{"smtp", "delivered locally"}:     func(m *Metrics) { m.deliveries.WithLabelValues("local").Inc() },
	{"smtp", "local delivery failed"}: func(m *Metrics) { m.deliveryFailures.WithLabelValues("local").Inc() },
	{"smtp", "delivered remotely"}:    func(m *Metrics) { m.deliveries.WithLabelValues("remote").Inc() },
	{"smtp", "remote delivery failed"}: func(m *Metrics) {
		m.deliveryFailures.WithLabelValues("remote").Inc()
	},
	{"smtp", "queued"}:            func(m *Metrics) { m.queued.Inc() },
	{"smtp", "rejected by DMARC"}: func(m *Metrics) { m.rejected.WithLabelValues("dmarc").Inc() },
	{"smtp", "relay denied"}:      func(m *Metrics) { m.rejected.WithLabelValues("relay").Inc() },
}

func (m *Metrics) loginFailedFromLog(proto string) {
	if !m.loginHook.Load() {
		m.logins.WithLabelValues(proto, "failed").Inc()
	}
}

// Logger returns a logger that writes to l's handler and counts the events above. Give it to the
// protocol frontends.
func (m *Metrics) Logger(l *slog.Logger) *slog.Logger {
	return slog.New(&countingHandler{next: l.Handler(), m: m})
}

// countingHandler counts events and passes every record its next handler wants on to it.
type countingHandler struct {
	next    slog.Handler
	m       *Metrics
	proto   string // the "proto" attribute of the logger, if any
	grouped bool   // attributes added now are in a group: not the logger's proto
}

func (h *countingHandler) Enabled(ctx context.Context, level slog.Level) bool {
	// Counted events are logged at Info or above; they must reach Handle
	// even when the next handler discards them.
	return level >= slog.LevelInfo || h.next.Enabled(ctx, level)
}

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if count := events[event{h.proto, r.Message}]; count != nil {
		count(h.m)
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *countingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	if !h.grouped {
		for _, a := range attrs {
			if a.Key == "proto" {
				c.proto = a.Value.String()
			}
		}
	}
	return &c
}

func (h *countingHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	c.grouped = true
	return &c
}
