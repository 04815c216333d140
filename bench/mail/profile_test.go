package mail

import (
	"context"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"testing"

	"kreide/config"
	"kreide/internal/admin"
	"kreide/protocols"
)

// TestProfileIMAPMixed takes a CPU profile of kreide under the IMAP mixed
// workload. kreide serve has no profiling endpoint, so this starts the
// whole server in this process (protocols.Start over a fresh data dir, as
// kreide serve does), fills and warms it as the benchmark does, and
// profiles only the mixed workload. The client goroutines carry the pprof
// label side=client, so they can be left out:
//
//	KREIDE_BENCH_PROFILE=/tmp/imap.pprof go test ./bench/mail -run ProfileIMAPMixed -v -timeout 30m
//	go tool pprof -top -nodecount 25 -tagignore side=client /tmp/imap.pprof
//
// With -short it uses the -quick sizes. TestProfileIMAPResync does the same
// for the Thunderbird-like resync (ten passes over one INBOX).
func TestProfileIMAPMixed(t *testing.T) {
	sz := sizesFor(testing.Short())
	addr, users := inProcessKreide(t, sz)
	var m *mixedResult
	profile(t, func(ctx context.Context) {
		m = mixed(ctx, addr, users, benchPassword, sz.clients, sz.duration)
	})
	t.Logf("%d commands in %v (%.0f/s), %d failed", m.all.Count(), m.elapsed, m.rate(), m.errors())
	for _, c := range mixedCommands {
		t.Logf("  %-8s p50 %v p99 %v", c, m.lat[c].Percentile(50), m.lat[c].Percentile(99))
	}
}

func TestProfileIMAPResync(t *testing.T) {
	sz := sizesFor(testing.Short())
	addr, users := inProcessKreide(t, sz)
	profile(t, func(ctx context.Context) {
		for range 10 {
			d, n, err := resync(addr, users[0], benchPassword)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("resync of %d messages: %v", n, d)
		}
	})
}

// inProcessKreide starts kreide's frontends in this process over a fresh
// data dir with the benchmark's accounts, filled and warmed up as the
// benchmark does. It skips the test unless KREIDE_BENCH_PROFILE is set.
func inProcessKreide(t *testing.T, sz sizes) (addr string, users []string) {
	if os.Getenv("KREIDE_BENCH_PROFILE") == "" {
		t.Skip("set KREIDE_BENCH_PROFILE=FILE to write a CPU profile of kreide")
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg := config.Default()
	cfg.Hostname = "mail.bench.example"
	cfg.Domains = []string{benchDomain}
	cfg.DataDir = t.TempDir()
	cfg.DemoAccount = ""
	cfg.Listen = config.Listen{IMAP: "127.0.0.1:0"}
	cfg.Limits.MaxConnsPerIP = 1000
	cfg.Limits.DefaultQuota = 20 * config.GiB
	dir, err := admin.OpenDirectory(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	users = userNames(sz.users)
	for _, u := range users {
		if _, err := dir.CreateAccount(ctx, u, benchPassword); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := protocols.Start(ctx, cfg, dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		srv.Wait()
	})
	addr = srv.Addr("listen.imap").String()
	if err := appendAll(ctx, addr, users, benchPassword, sz.messages, 4, nil); err != nil {
		t.Fatal(err)
	}
	if err := warmUp(addr, users, benchPassword); err != nil {
		t.Fatal(err)
	}
	return addr, users
}

// profile writes a CPU profile of fn to $KREIDE_BENCH_PROFILE; fn's
// goroutines carry the label side=client.
func profile(t *testing.T, fn func(ctx context.Context)) {
	out := os.Getenv("KREIDE_BENCH_PROFILE")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	pprof.Do(context.Background(), pprof.Labels("side", "client"), fn)
	pprof.StopCPUProfile()
	t.Logf("profile in %s", out)
}
