package smtp

import (
	"net"
	"os/exec"
	"strings"
	"testing"

	"kreide/internal/interop"
	"kreide/store"
)

// TestInteropSwaks drives the server with swaks, a real SMTP client.
func TestInteropSwaks(t *testing.T) {
	swaks := interop.Need(t, "swaks", "swaks")
	e := newEnv(t, nil)
	alice := e.user("alice@example.org", "password-alice")
	bob := e.user("bob@example.org", "password-bob")
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(t.Context(), swaks, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("swaks %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	t.Run("inbound", func(t *testing.T) {
		host, port, _ := net.SplitHostPort(e.mx)
		run("--server", host, "--port", port, "--helo", "mta.sender.test",
			"--from", "bob@sender.test", "--to", "alice@example.org",
			"--header", "Subject: swaks inbound", "--body", "marker-swaks-inbound")
		got := messages(t, alice, store.RoleInbox)
		if len(got) != 1 || !strings.Contains(got[0], "marker-swaks-inbound") || !strings.Contains(got[0], "Authentication-Results: mail.example.org") {
			t.Fatalf("INBOX: %q", got)
		}
	})

	t.Run("submission with STARTTLS and an app password", func(t *testing.T) {
		token, err := e.dir.AddAppPassword(t.Context(), "alice@example.org", "password-alice", "swaks", []store.Scope{store.ScopeSMTP})
		if err != nil {
			t.Fatal(err)
		}
		host, port, _ := net.SplitHostPort(e.sub)
		out := run("--server", host, "--port", port, "--tls", "--auth", "PLAIN",
			"--auth-user", "alice@example.org", "--auth-password", token,
			"--from", "alice@example.org", "--to", "bob@example.org",
			"--header", "Subject: swaks submission", "--body", "marker-swaks-submission")
		if !strings.Contains(out, "235 2.0.0") {
			t.Fatalf("no successful AUTH:\n%s", out)
		}
		got := messages(t, bob, store.RoleInbox)
		if len(got) != 1 || !strings.Contains(got[0], "marker-swaks-submission") {
			t.Fatalf("bob's INBOX: %q", got)
		}
	})

	t.Run("submission refuses plaintext AUTH", func(t *testing.T) {
		host, port, _ := net.SplitHostPort(e.sub)
		out, err := exec.CommandContext(t.Context(), swaks, "--server", host, "--port", port, "--auth", "PLAIN",
			"--auth-user", "alice@example.org", "--auth-password", "password-alice",
			"--from", "alice@example.org", "--to", "bob@example.org").CombinedOutput()
		if err == nil {
			t.Fatalf("swaks succeeded without TLS:\n%s", out)
		}
	})
}
