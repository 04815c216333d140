package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"kreide/protocols"
)

// kreideBin is the kreide binary built once for all tests.
var kreideBin string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "kreide-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		kreideBin = filepath.Join(dir, "kreide")
		build := exec.Command("go", "build", "-o", kreideBin, ".")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building kreide:", err)
			return 1
		}
		return m.Run()
	}())
}

type result struct {
	stdout, stderr string
	code           int
}

// kreide runs the binary with stdin as standard input (not a terminal).
func kreide(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kreideBin, args...)
	cmd.Dir = t.TempDir()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("kreide %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// ok runs kreide and fails the test unless it exits 0.
func ok(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	r := kreide(t, stdin, args...)
	if r.code != 0 {
		t.Fatalf("kreide %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// fails runs kreide and checks it fails with status code and a stderr line containing want.
func fails(t *testing.T, code int, want, stdin string, args ...string) result {
	t.Helper()
	r := kreide(t, stdin, args...)
	if r.code != code || !strings.Contains(r.stderr, want) {
		t.Fatalf("kreide %s: exit %d, stderr %q; want exit %d and %q", strings.Join(args, " "), r.code, r.stderr, code, want)
	}
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
		t.Fatalf("kreide %s printed a stack trace: %s", strings.Join(args, " "), r.stderr)
	}
	return r
}

// writeConfig writes a config for domain school.test with every listener on
// a free loopback port and the data dir under t.TempDir().
func writeConfig(t *testing.T, demo string) (path, dataDir string) {
	t.Helper()
	dir := t.TempDir()
	dataDir = filepath.Join(dir, "data")
	path = filepath.Join(dir, "kreide.toml")
	tmpl, err := os.ReadFile("../../testdata/serve.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer("DATA_DIR", dataDir, "DEMO_ACCOUNT", demo).Replace(string(tmpl))
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, dataDir
}

// server is a running `kreide serve`.
type server struct {
	cmd            *exec.Cmd
	stdout, stderr string // files
	exited         chan error
}

func (s *server) output() (stdout, stderr string) {
	o, _ := os.ReadFile(s.stdout)
	e, _ := os.ReadFile(s.stderr)
	return string(o), string(e)
}

// startServe runs `kreide serve -config cfg` and waits until it is ready.
func startServe(t *testing.T, cfg string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{stdout: filepath.Join(dir, "stdout"), stderr: filepath.Join(dir, "stderr"), exited: make(chan error, 1)}
	out, err := os.Create(s.stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	errf, err := os.Create(s.stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	s.cmd = exec.Command(kreideBin, "serve", "-config", cfg)
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = out, errf
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait() }()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
			<-s.exited
		}
	})
	deadline := time.After(60 * time.Second)
	for {
		_, stderr := s.output()
		if strings.Contains(stderr, "kreide is running") {
			return s
		}
		select {
		case err := <-s.exited:
			stdout, stderr := s.output()
			t.Fatalf("kreide serve exited: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
		case <-deadline:
			stdout, stderr := s.output()
			t.Fatalf("kreide serve not ready after 60s\nstdout: %s\nstderr: %s", stdout, stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop sends SIGINT and checks that serve exits 0 and removes its socket.
func (s *server) stop(t *testing.T, dataDir string) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.exited:
		if err != nil {
			stdout, stderr := s.output()
			t.Fatalf("kreide serve after SIGINT: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("kreide serve did not stop within 30s of SIGINT")
	}
	if _, err := os.Stat(filepath.Join(dataDir, "control.sock")); !os.IsNotExist(err) {
		t.Errorf("control.sock left behind after serve stopped (%v)", err)
	}
}

var recoveryCodeRE = regexp.MustCompile(`Recovery code: +([a-z0-9-]+)`)

func recoveryCode(t *testing.T, out string) string {
	t.Helper()
	m := recoveryCodeRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no recovery code in %q", out)
	}
	return m[1]
}

// accountDirs counts the per-account directories under the data dir.
func accountDirs(t *testing.T, dataDir string) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dataDir, "users"))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// adminScenario runs every admin command against the data dir of cfg.
func adminScenario(t *testing.T, cfg, dataDir string) {
	c := []string{"-config", cfg}
	args := func(a ...string) []string { return append(a, c...) }

	out := ok(t, "password one\n", args("user", "add", "anna@school.test")...)
	code := recoveryCode(t, out.stdout)
	if !strings.Contains(out.stdout, "shown only now") || !strings.Contains(out.stdout, "kreide user recover anna@school.test") {
		t.Errorf("user add does not say what the recovery code is for:\n%s", out.stdout)
	}
	fails(t, 1, "anna@school.test already exists", "password one\n", args("user", "add", "anna@school.test")...)
	fails(t, 1, "does not serve the domain elsewhere.test", "password one\n", args("user", "add", "bob@elsewhere.test")...)
	fails(t, 1, "at least 8 characters", "short\n", args("user", "add", "bob@school.test")...)
	fails(t, 1, "password is missing", "", args("user", "add", "bob@school.test")...)
	ok(t, "password two\n", args("user", "add", "bob@school.test")...)

	list := ok(t, "", args("user", "list")...).stdout
	for _, want := range []string{"LOGIN", "anna@school.test", "bob@school.test", "1 GiB"} {
		if !strings.Contains(list, want) {
			t.Errorf("user list lacks %q:\n%s", want, list)
		}
	}

	ok(t, "", args("user", "quota", "anna@school.test", "5GiB")...)
	list = ok(t, "", args("user", "list")...).stdout
	if !regexp.MustCompile(`anna@school\.test +- +5 GiB`).MatchString(list) {
		t.Errorf("user list after quota:\n%s", list)
	}
	fails(t, 2, `invalid size "5 parsecs"`, "", args("user", "quota", "anna@school.test", "5 parsecs")...)

	// App passwords.
	ap := ok(t, "password one\n", args("apppass", "add", "anna@school.test", "Anna's phone", "-scope", "imap,smtp")...).stdout
	if !regexp.MustCompile(`\n    [a-z0-9]{4}(-[a-z0-9]{1,4}){5,}\n`).MatchString(ap) {
		t.Errorf("apppass add shows no token:\n%s", ap)
	}
	fails(t, 1, "wrong password for anna@school.test", "password two\n", args("apppass", "add", "anna@school.test", "laptop")...)
	fails(t, 2, `unknown scope "pop3"`, "password one\n", args("apppass", "add", "-scope", "pop3", "anna@school.test", "laptop")...)
	ok(t, "password one\n", args("apppass", "add", "anna@school.test", "laptop")...)
	aps := ok(t, "", args("apppass", "list", "anna@school.test")...).stdout
	if !regexp.MustCompile(`Anna's phone +imap,smtp +\S+ \S+ +never`).MatchString(aps) || !strings.Contains(aps, "laptop") {
		t.Errorf("apppass list:\n%s", aps)
	}
	ok(t, "", args("apppass", "revoke", "anna@school.test", "Anna's phone")...)
	fails(t, 1, `no app password labelled "Anna's phone"`, "", args("apppass", "revoke", "anna@school.test", "Anna's phone")...)
	if aps := ok(t, "", args("apppass", "list", "anna@school.test")...).stdout; strings.Contains(aps, "phone") || !strings.Contains(aps, "laptop") {
		t.Errorf("apppass list after revoke:\n%s", aps)
	}

	// Password change needs the current password.
	fails(t, 1, "wrong current password", "not the password\npassword new\n", args("user", "passwd", "anna@school.test")...)
	ok(t, "password one\npassword new\n", args("user", "passwd", "anna@school.test")...)
	fails(t, 1, "wrong password", "password one\n", args("apppass", "add", "anna@school.test", "tablet")...)
	ok(t, "password new\n", args("apppass", "add", "anna@school.test", "tablet")...)

	// Recovery: the code sets a new password, and is replaced.
	fails(t, 1, "wrong recovery code", "aaaa-bbbb-cccc\npassword newer\n", args("user", "recover", "anna@school.test")...)
	rec := ok(t, code+"\npassword newer\n", args("user", "recover", "anna@school.test")...).stdout
	if code2 := recoveryCode(t, rec); code2 == code {
		t.Errorf("user recover kept the old recovery code")
	}
	fails(t, 1, "wrong recovery code", code+"\npassword newest\n", args("user", "recover", "anna@school.test")...)
	ok(t, "password newer\n", args("apppass", "add", "anna@school.test", "watch")...)

	// Delete: refused without a terminal or -yes, then every byte goes.
	before := accountDirs(t, dataDir)
	fails(t, 1, "add -yes", "", args("user", "delete", "anna@school.test")...)
	ok(t, "", args("user", "delete", "-yes", "anna@school.test")...)
	if after := accountDirs(t, dataDir); after != before-1 {
		t.Errorf("user delete: %d account directories before, %d after", before, after)
	}
	fails(t, 1, "there is no account anna@school.test", "", args("user", "delete", "-yes", "anna@school.test")...)
	if list := ok(t, "", args("user", "list")...).stdout; strings.Contains(list, "anna@") || !strings.Contains(list, "bob@school.test") {
		t.Errorf("user list after delete:\n%s", list)
	}
}

func TestAdminWithoutServe(t *testing.T) {
	cfg, dataDir := writeConfig(t, "")
	fails(t, 1, "does not exist", "", "user", "list", "-config", cfg)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	adminScenario(t, cfg, dataDir)
}

func TestAdminThroughServe(t *testing.T) {
	cfg, dataDir := writeConfig(t, "")
	s := startServe(t, cfg)
	if fi, err := os.Stat(filepath.Join(dataDir, "control.sock")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v %v", fi, err)
	}
	adminScenario(t, cfg, dataDir)
	// The commands went through the socket: serve logged them (never a secret).
	_, log := s.output()
	if !strings.Contains(log, `msg="admin command" op=user.add address=anna@school.test`) {
		t.Errorf("serve did not log the admin commands:\n%s", log)
	}
	for _, secret := range []string{"password one", "password new"} {
		if strings.Contains(log, secret) {
			t.Errorf("serve logged a password:\n%s", log)
		}
	}
	s.stop(t, dataDir)
	// Afterwards the same data is there for the direct path.
	if list := ok(t, "", "user", "list", "-config", cfg).stdout; !strings.Contains(list, "bob@school.test") {
		t.Errorf("user list after serve stopped:\n%s", list)
	}
}

func TestSecondServeFails(t *testing.T) {
	cfg, dataDir := writeConfig(t, "")
	s := startServe(t, cfg)
	r := fails(t, 1, "is in use by another kreide process", "", "serve", "-config", cfg)
	if lines := strings.Count(strings.TrimSpace(r.stderr), "\n"); lines > 0 {
		t.Errorf("second serve: want one line of error, got:\n%s", r.stderr)
	}
	s.stop(t, dataDir)
}

func TestServeDemoAccount(t *testing.T) {
	cfg, dataDir := writeConfig(t, "demo@school.test")
	s := startServe(t, cfg)
	stdout, _ := s.output()
	m := regexp.MustCompile(`Password: +(\S+)`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("serve printed no demo password:\n%s", stdout)
	}
	recoveryCode(t, stdout)
	wants := []string{"demo@school.test", "self-signed"}
	if protocols.Served("listen.imap") {
		wants = append(wants, "IMAP:", "STARTTLS", "SSL/TLS")
	}
	if protocols.Served("listen.submission") {
		wants = append(wants, "SMTP (sending):")
	}
	for _, want := range wants {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo settings lack %q:\n%s", want, stdout)
		}
	}
	// The printed password unlocks the account (through serve's socket).
	ap := ok(t, m[1]+"\n", "apppass", "add", "demo@school.test", "x", "-config", cfg).stdout
	if protocols.Served("listen.imap") {
		// The printed settings are right: IMAP on that port takes the
		// password and the new app password (plaintext: from loopback).
		port := regexp.MustCompile(`IMAP: +localhost port (\d+), STARTTLS`).FindStringSubmatch(stdout)
		token := regexp.MustCompile(`\n    (\S+)\n`).FindStringSubmatch(ap)
		if port == nil || token == nil {
			t.Fatalf("no IMAP port in\n%s\nor no token in\n%s", stdout, ap)
		}
		for _, secret := range []string{m[1], token[1]} {
			imapLogin(t, "127.0.0.1:"+port[1], "demo@school.test", secret)
		}
	}
	fails(t, 1, "wrong password", "not-the-password\n", "apppass", "add", "demo@school.test", "y", "-config", cfg)
	s.stop(t, dataDir)

	// Only on the first start.
	s = startServe(t, cfg)
	if stdout, _ := s.output(); strings.Contains(stdout, "Password:") {
		t.Errorf("second start printed a demo account again:\n%s", stdout)
	}
	s.stop(t, dataDir)
}

// imapLogin logs in with IMAP LOGIN and fails the test unless it succeeds.
func imapLogin(t *testing.T, addr, user, password string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	if greeting, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(greeting, "* OK") {
		t.Fatalf("IMAP greeting %q, %v", greeting, err)
	}
	fmt.Fprintf(c, "a LOGIN %q %q\r\n", user, password)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("IMAP LOGIN: %v", err)
		}
		if strings.HasPrefix(line, "a ") {
			if !strings.HasPrefix(line, "a OK") {
				t.Fatalf("IMAP LOGIN %s: %s", user, line)
			}
			return
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{
		{}, {"serve"}, {"user"}, {"user", "add"}, {"user", "list"}, {"user", "passwd"}, {"user", "delete"},
		{"user", "quota"}, {"user", "recover"}, {"apppass"}, {"apppass", "add"}, {"apppass", "list"},
		{"apppass", "revoke"}, {"config"}, {"config", "example"}, {"config", "check"},
	} {
		for _, h := range []string{"--help", "-h"} {
			r := kreide(t, "", append(args, h)...)
			name := strings.Join(append([]string{"kreide"}, args...), " ")
			if r.code != 0 || !strings.Contains(r.stdout, "Usage: "+name) || !strings.Contains(r.stdout, "Example:\n  kreide ") {
				t.Errorf("%s %s: exit %d, stdout:\n%s", name, h, r.code, r.stdout)
			}
		}
	}
	if r := ok(t, "", "user", "passwd", "--help"); !strings.Contains(r.stdout, "kreide user recover") {
		t.Errorf("user passwd --help does not point to user recover:\n%s", r.stdout)
	}
}

func TestConfigCommands(t *testing.T) {
	example := ok(t, "", "config", "example").stdout
	path := filepath.Join(t.TempDir(), "kreide.toml")
	if err := os.WriteFile(path, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := ok(t, "", "config", "check", "-config", path); !strings.Contains(r.stdout, "ok") {
		t.Errorf("config check of the example: %q", r.stdout)
	}
	if !strings.Contains(example, `hostname = "mail.school.example"`) || !strings.Contains(example, `demo_account = ""`) {
		t.Errorf("config example is not for a real server:\n%s", example)
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[listen]\nimap = \"nowhere\"\n"), 0o600)
	fails(t, 1, "bad.toml:2: listen.imap", "", "config", "check", "-config", bad)
	fails(t, 2, "no config file given", "", "config", "check")
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing command"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"user"}, "missing command"},
		{[]string{"user", "add"}, "missing ADDRESS"},
		{[]string{"user", "add", "a@b.c", "d@e.f"}, `unexpected argument "d@e.f"`},
		{[]string{"user", "add", "not an address"}, "is not an e-mail address"},
		{[]string{"user", "quota", "a@b.c"}, "missing SIZE"},
		{[]string{"user", "list", "-frob"}, "flag provided but not defined: -frob"},
		{[]string{"serve", "extra"}, `unexpected argument "extra"`},
	} {
		r := kreide(t, "", tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "--help") {
			t.Errorf("kreide %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
	// A broken config file is one clear error, exit 1.
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("listen.imapz = \"x\"\n"), 0o600)
	fails(t, 1, `unknown key "listen.imapz"`, "", "user", "list", "-config", bad)
	fails(t, 1, "reading config file", "", "serve", "-config", filepath.Join(t.TempDir(), "missing.toml"))
}
