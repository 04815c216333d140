package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kreide/config"
	"kreide/internal/portability"
	"kreide/internal/portability/portabilitytest"
	"kreide/store"
	"kreide/store/storetest"
)

// serving opens a data dir with an account and a control socket on it.
func serving(t *testing.T) (*config.Config, *store.Directory, *Server) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "d")
	cfg.Domains = []string{"school.test"}
	os.MkdirAll(cfg.DataDir, 0o700)
	d, err := store.Open(cfg.DataDir, storetest.Options())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	d.AddDomain(context.Background(), "school.test")
	if _, err := d.CreateAccount(context.Background(), "anna@school.test", "password one"); err != nil {
		t.Fatal(err)
	}
	srv, err := Listen(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return cfg, d, srv
}

func TestTransferThroughSocket(t *testing.T) {
	ctx := context.Background()
	cfg, d, _ := serving(t)
	f := portabilitytest.Write(t, t.TempDir())
	for _, p := range []string{f.Maildir, f.Mbox, f.Calendars, f.VCF, f.Files} {
		plan, err := portability.Scan(p, portability.ScanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var outcomes, failed int64
		err = Import(ctx, cfg, "anna@school.test", "password one", func(ctx context.Context, sink portability.Sink) error {
			if _, ok := sink.(*remoteSink); !ok {
				t.Errorf("not through the socket: %T", sink)
			}
			return plan.Import(ctx, sink, func(r portability.Result) {
				outcomes++
				if r.Err != nil {
					failed++
				}
			})
		})
		plan.Close()
		if err != nil || outcomes != plan.Items() || (failed != 0) != (p == f.VCF) {
			t.Errorf("import %s: %v, %d outcomes of %d items, %d failed", p, err, outcomes, plan.Items(), failed)
		}
	}
	a, err := d.Login(ctx, "anna@school.test", "password one", store.ScopeIMAP)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	portabilitytest.CheckAccount(t, a, f)

	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(Export(ctx, cfg, "anna@school.test", "password one", pw, nil)) }()
	out := t.TempDir()
	portabilitytest.Untar(t, pr, out)
	portabilitytest.CheckExport(t, out, f)

	err = Import(ctx, cfg, "anna@school.test", "wrong", func(context.Context, portability.Sink) error {
		t.Error("import ran without the right password")
		return nil
	})
	if err == nil || err.Error() != "wrong password for anna@school.test" {
		t.Errorf("wrong password: %v", err)
	}
}

// A client that sends garbage or goes away mid-item does not disturb
// serve, and stored nothing half.
func TestTransferBadClients(t *testing.T) {
	cfg, d, _ := serving(t)
	start := func() (net.Conn, *bufio.Reader) {
		conn, err := net.Dial("unix", SocketPath(cfg.DataDir))
		if err != nil {
			t.Fatal(err)
		}
		writeJSONLine(conn, Request{Op: OpImport, Address: "anna@school.test", Password: "password one"})
		r := bufio.NewReader(conn)
		line, err := r.ReadBytes('\n')
		var resp Response
		if err != nil || json.Unmarshal(line, &resp) != nil || resp.Error != "" {
			t.Fatalf("start: %q %v", line, err)
		}
		return conn, r
	}
	// Garbage frames.
	conn, r := start()
	conn.Write([]byte("Z\x00\x00\x00\x01xx"))
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(r); err != nil {
		t.Errorf("serve did not close the connection: %v", err)
	}
	conn.Close()
	// A frame too large to be real.
	conn, r = start()
	conn.Write([]byte("I\xff\xff\xff\xff"))
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.ReadAll(r)
	conn.Close()
	// Gone in the middle of a message.
	conn, _ = start()
	w := bufio.NewWriter(conn)
	item, _ := json.Marshal(portability.Item{Kind: portability.KindMessage, Mailbox: "Halb", Source: "x"})
	writeFrame(w, frameItem, item)
	writeFrame(w, frameData, []byte("Subject: half\r\n\r\nhalf a mes"))
	w.Flush()
	conn.Close()

	// serve still answers, and the half message is nowhere.
	if resp, err := Run(context.Background(), cfg, Request{Op: OpUserList}); err != nil || resp.Error != "" || len(resp.Accounts) != 1 {
		t.Fatalf("user.list after bad clients: %v %+v", err, resp)
	}
	a, err := d.Login(context.Background(), "anna@school.test", "password one", store.ScopeIMAP)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mb, err := a.MailboxByName(context.Background(), "Halb")
		if errors.Is(err, store.ErrNotFound) || (err == nil && mb.Messages == 0) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Error("a message cut off by a lost connection was stored")
}

// serve stopping ends a running import at once rather than waiting for it.
func TestTransferEndsWhenServeStops(t *testing.T) {
	cfg, _, srv := serving(t)
	conn, err := net.Dial("unix", SocketPath(cfg.DataDir))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	writeJSONLine(conn, Request{Op: OpImport, Address: "anna@school.test", Password: "password one"})
	r := bufio.NewReader(conn)
	if line, err := r.ReadBytes('\n'); err != nil || strings.Contains(string(line), "error") {
		t.Fatalf("start: %q %v", line, err)
	}
	// The client now sends nothing: an import waiting for items.
	done := make(chan error, 1)
	go func() { done <- srv.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve's control socket did not close while an import waited")
	}
}

// A full quota stops an import through the socket with one clear line.
func TestTransferQuota(t *testing.T) {
	ctx := context.Background()
	cfg, d, _ := serving(t)
	if err := d.SetQuota(ctx, "anna@school.test", 1<<20); err != nil {
		t.Fatal(err)
	}
	f := portabilitytest.Write(t, t.TempDir())
	plan, err := portability.Scan(f.Files, portability.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	var stored, failed int
	err = Import(ctx, cfg, "anna@school.test", "password one", func(ctx context.Context, sink portability.Sink) error {
		return plan.Import(ctx, sink, func(r portability.Result) {
			if r.Err != nil {
				failed++
			} else {
				stored++
			}
		})
	})
	if err == nil || !strings.Contains(err.Error(), "quota is used up") || stored == 0 || failed == 0 {
		t.Fatalf("import over quota: %v after %d stored, %d failed", err, stored, failed)
	}
	a, err := d.Login(ctx, "anna@school.test", "password one", store.ScopeIMAP)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Files().Stat(ctx, "Imported/Unterricht/Arbeitsblatt 1.txt"); err != nil {
		t.Errorf("a file before the quota ran out: %v", err)
	}
}
