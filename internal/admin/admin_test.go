package admin

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kreide/config"
	"kreide/store"
	"kreide/store/storetest"
)

func openDir(t *testing.T) *store.Directory {
	t.Helper()
	d, err := store.Open(t.TempDir(), storetest.Options())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.AddDomain(context.Background(), "school.test"); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestExecute(t *testing.T) {
	ctx := context.Background()
	d := openDir(t)
	add := Execute(ctx, d, Request{Op: OpUserAdd, Address: "Anna@School.test", Password: "password one"})
	if add.Error != "" || add.RecoveryCode == "" || add.Account == nil || add.Account.Login != "anna@school.test" {
		t.Fatalf("user.add: %+v", add)
	}
	token := Execute(ctx, d, Request{Op: OpAppPassAdd, Address: "anna@school.test", Password: "password one", Label: "phone", Scopes: []string{"imap"}})
	if token.Error != "" || token.Token == "" {
		t.Fatalf("apppass.add: %+v", token)
	}

	// Each failure is one line that says what is wrong.
	for _, tc := range []struct {
		req  Request
		want string
	}{
		{Request{Op: OpUserAdd, Address: "anna@school.test", Password: "password two"}, "anna@school.test already exists"},
		{Request{Op: OpUserAdd, Address: "bob@elsewhere.test", Password: "password two"}, "does not serve the domain elsewhere.test"},
		{Request{Op: OpUserAdd, Address: "bob@school.test", Password: "short"}, "at least 8 characters"},
		{Request{Op: OpUserAdd, Address: "not an address", Password: "password two"}, "is not an e-mail address"},
		{Request{Op: OpUserPasswd, Address: "anna@school.test", Password: "wrong one", NewPassword: "password two"}, "wrong current password for anna@school.test"},
		{Request{Op: OpUserPasswd, Address: "nobody@school.test", Password: "password one", NewPassword: "password two"}, "there is no account nobody@school.test"},
		{Request{Op: OpUserRecover, Address: "anna@school.test", RecoveryCode: "aaaa-bbbb", NewPassword: "password two"}, "wrong recovery code"},
		{Request{Op: OpUserQuota, Address: "anna@school.test", Quota: 0}, "quota must be positive"},
		{Request{Op: OpAppPassAdd, Address: "anna@school.test", Password: "password one", Label: "phone"}, `already has an app password labelled "phone"`},
		{Request{Op: OpAppPassAdd, Address: "anna@school.test", Password: "password one", Label: "x", Scopes: []string{"pop3"}}, `unknown scope "pop3"`},
		{Request{Op: OpAppPassRevoke, Address: "anna@school.test", Label: "laptop"}, `no app password labelled "laptop"`},
		{Request{Op: OpUserDelete}, "no address given"},
		{Request{Op: "user.frobnicate", Address: "anna@school.test"}, `unknown command "user.frobnicate"`},
	} {
		resp := Execute(ctx, d, tc.req)
		if !strings.Contains(resp.Error, tc.want) || strings.Contains(resp.Error, "\n") {
			t.Errorf("%s %s: error %q, want one line with %q", tc.req.Op, tc.req.Address, resp.Error, tc.want)
		}
	}

	list := Execute(ctx, d, Request{Op: OpAppPassList, Address: "anna@school.test"})
	if list.Error != "" || len(list.AppPasswords) != 1 || list.AppPasswords[0].Label != "phone" || strings.Join(list.AppPasswords[0].Scopes, ",") != "imap" {
		t.Fatalf("apppass.list: %+v", list)
	}
	rec := Execute(ctx, d, Request{Op: OpUserRecover, Address: "anna@school.test", RecoveryCode: add.RecoveryCode, NewPassword: "password three"})
	if rec.Error != "" || rec.RecoveryCode == "" || rec.RecoveryCode == add.RecoveryCode {
		t.Fatalf("user.recover: %+v", rec)
	}
	if resp := Execute(ctx, d, Request{Op: OpUserDelete, Address: "anna@school.test"}); resp.Error != "" {
		t.Fatalf("user.delete: %s", resp.Error)
	}
	if resp := Execute(ctx, d, Request{Op: OpUserList}); resp.Error != "" || len(resp.Accounts) != 0 {
		t.Fatalf("user.list after delete: %+v", resp)
	}
}

// The socket and the direct path give the same answers.
func TestSocketAndDirect(t *testing.T) {
	ctx := context.Background()
	dataDir := filepath.Join(t.TempDir(), "d")
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.Domains = []string{"school.test"}

	// No serve, no data dir: a clear error rather than a new empty data dir.
	if _, err := Run(ctx, cfg, Request{Op: OpUserList}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Run without data dir: %v", err)
	}

	// Direct: the data dir is opened by Run itself, and the configured
	// domain is registered.
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	direct, err := Run(ctx, cfg, Request{Op: OpUserList})
	if err != nil || direct.Error != "" {
		t.Fatalf("direct user.list: %v %+v", err, direct)
	}

	// A socket file left behind by a serve that died does not get in the way.
	stale, err := net.Listen("unix", SocketPath(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	if resp, err := Run(ctx, cfg, Request{Op: OpUserList}); err != nil || resp.Error != "" {
		t.Fatalf("user.list with a stale socket: %v %+v", err, resp)
	}

	// Through the socket, while "serve" holds the data dir.
	d, err := store.Open(dataDir, storetest.Options())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	srv, err := Listen(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(SocketPath(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("control socket mode %v, want a socket with 0600", fi.Mode())
	}
	add, err := Run(ctx, cfg, Request{Op: OpUserAdd, Address: "anna@school.test", Password: "password one"})
	if err != nil || add.Error != "" || add.RecoveryCode == "" {
		t.Fatalf("user.add through the socket: %v %+v", err, add)
	}
	again, err := Run(ctx, cfg, Request{Op: OpUserAdd, Address: "anna@school.test", Password: "password one"})
	want := Execute(ctx, d, Request{Op: OpUserAdd, Address: "anna@school.test", Password: "password one"})
	if err != nil || again.Error == "" || again.Error != want.Error {
		t.Fatalf("same failure through the socket and directly: %v %q vs %q", err, again.Error, want.Error)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(SocketPath(dataDir)); !os.IsNotExist(err) {
		t.Fatalf("control socket still there after Close: %v", err)
	}
}
