package metrics

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// value is the current value of a counter or gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

func TestLogEvents(t *testing.T) {
	m := New(Options{})
	var out bytes.Buffer
	// The next handler writes warnings only: counted Info events still count.
	base := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	l := m.Logger(base)
	imapLog := l.With("proto", "imap")
	smtpLog := l.With("proto", "smtp").With("mode", "submission")

	imapLog.Info("imap: login failed", "remote", "192.0.2.1")
	smtpLog.Info("authentication failed", "user", "x")
	smtpLog.Info("delivered", "recipients", 2)
	smtpLog.Info("delivered locally")
	smtpLog.Info("delivered locally")
	smtpLog.Info("queued")
	smtpLog.Info("remote delivery failed")
	smtpLog.Warn("delivery failed", "err", "disk full")
	l.Info("delivered") // no proto: not SMTP's event
	l.WithGroup("g").With("proto", "smtp").Info("delivered")

	for _, tc := range []struct {
		got  float64
		want float64
		what string
	}{
		{value(m.logins.WithLabelValues("imap", "failed")), 1, "imap failed logins"},
		{value(m.logins.WithLabelValues("smtp", "failed")), 1, "smtp failed logins"},
		{value(m.deliveries.WithLabelValues("inbound")), 1, "inbound deliveries"},
		{value(m.deliveries.WithLabelValues("local")), 2, "local deliveries"},
		{value(m.queued), 1, "queued"},
		{value(m.deliveryFailures.WithLabelValues("remote")), 1, "remote failures"},
		{value(m.deliveryFailures.WithLabelValues("inbound")), 1, "inbound failures"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %v, want %v", tc.what, tc.got, tc.want)
		}
	}
	// The records still reach the real handler as it wants them.
	if s := out.String(); !strings.Contains(s, `msg="delivery failed" proto=smtp mode=submission err="disk full"`) || strings.Contains(s, "queued") {
		t.Errorf("log output:\n%s", s)
	}

	// With the store's login hook, logins come from there only.
	m.Login("imap", true)
	imapLog.Info("imap: login failed")
	m.Login("imap", false)
	if ok, failed := value(m.logins.WithLabelValues("imap", "ok")), value(m.logins.WithLabelValues("imap", "failed")); ok != 1 || failed != 2 {
		t.Errorf("after the hook: ok %v, failed %v; want 1 and 2", ok, failed)
	}
}

func TestListener(t *testing.T) {
	m := New(Options{})
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := m.Listener("imap", raw)
	defer ln.Close()
	accepted := make(chan net.Conn)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var server []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		server = append(server, <-accepted)
	}
	open := m.open.WithLabelValues("imap")
	if total := value(m.connections.WithLabelValues("imap")); total != 2 || value(open) != 2 {
		t.Fatalf("total %v, open %v; want 2 and 2", total, value(open))
	}
	server[0].Close()
	server[0].Close() // twice: counted once
	if got := value(open); got != 1 {
		t.Errorf("open after one close: %v", got)
	}
	if server[1].RemoteAddr().String() == "" {
		t.Error("wrapped connection lost its remote address")
	}
}

func TestHandler(t *testing.T) {
	healthy := true
	queue := 3
	m := New(Options{
		QueueLength: func(context.Context) (int, error) { return queue, nil },
		Accounts:    func(context.Context) (int, error) { return 0, errors.New("closed") },
		Health: func(context.Context) error {
			if !healthy {
				return errors.New("closed")
			}
			return nil
		},
	})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	healthy = false
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, "closed") {
		t.Errorf("/healthz of a closed store: %d %q", code, body)
	}
	code, body := get("/metrics")
	if code != 200 || !strings.Contains(body, "\nkreide_queue_messages 3\n") || !strings.Contains(body, "\nkreide_accounts NaN\n") ||
		!strings.Contains(body, `kreide_logins_total{proto="dav",result="ok"} 0`) {
		t.Errorf("/metrics: %d\n%s", code, body)
	}

	// Request latency, by method (WebDAV's too) and status.
	h := m.HTTP("dav", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Millisecond)
		w.WriteHeader(207)
	}))
	for _, method := range []string{"PROPFIND", "PROPFIND", "FROBNICATE"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, "/dav/", nil))
	}
	_, body = get("/metrics")
	for _, want := range []string{
		`kreide_http_request_duration_seconds_count{code="207",handler="dav",method="propfind"} 2`,
		`kreide_http_request_duration_seconds_count{code="207",handler="dav",method="unknown"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
