package smtp

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"kreide/store"
)

func TestSubmissionAuthRules(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice@example.org", "password-alice")
	ctx := t.Context()
	imapOnly, err := e.dir.AddAppPassword(ctx, "alice@example.org", "password-alice", "phone imap", []store.Scope{store.ScopeIMAP})
	if err != nil {
		t.Fatal(err)
	}
	smtpApp, err := e.dir.AddAppPassword(ctx, "alice@example.org", "password-alice", "thunderbird", []store.Scope{store.ScopeSMTP})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("plaintext refused off loopback", func(t *testing.T) {
		c, err := gosmtp.Dial(e.sub)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Hello("client"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := c.Extension("AUTH"); ok {
			t.Fatal("AUTH advertised without TLS")
		}
		if ok, _ := c.Extension("STARTTLS"); !ok {
			t.Fatal("STARTTLS not advertised")
		}
		wantCode(t, c.Auth(sasl.NewPlainClient("", "alice@example.org", "password-alice")), "538 5.7.11")
		wantCode(t, c.Mail("alice@example.org", nil), "530 5.7.0")
	})
	t.Run("mail without auth", func(t *testing.T) {
		c := e.dialSubmission()
		wantCode(t, c.Mail("alice@example.org", nil), "530 5.7.0")
	})
	for _, tc := range []struct {
		name, user, pass, want string
	}{
		{"password", "alice@example.org", "password-alice", "ok"},
		{"app password", "alice@example.org", smtpApp, "ok"},
		{"app password typed with spaces and capitals", "alice@example.org", strings.ToUpper(strings.ReplaceAll(smtpApp, "-", " ")), "ok"},
		{"app password without smtp scope", "alice@example.org", imapOnly, "535 5.7.8"},
		{"wrong password", "alice@example.org", "wrong-password", "535 5.7.8"},
		{"unknown user", "mallory@example.org", "password-alice", "535 5.7.8"},
	} {
		t.Run("PLAIN "+tc.name, func(t *testing.T) {
			c := e.dialSubmission()
			wantCode(t, c.Auth(sasl.NewPlainClient("", tc.user, tc.pass)), tc.want)
		})
		t.Run("LOGIN "+tc.name, func(t *testing.T) {
			c := e.dialSubmission()
			wantCode(t, c.Auth(sasl.NewLoginClient(tc.user, tc.pass)), tc.want)
		})
	}
	t.Run("implicit TLS", func(t *testing.T) {
		c, err := gosmtp.DialTLS(e.subs, &tls.Config{RootCAs: e.roots, ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Auth(sasl.NewPlainClient("", "alice@example.org", smtpApp)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSubmissionPlaintextOnLoopbackWhenAllowed(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.AllowPlaintext = func(c net.Conn) bool { return c.RemoteAddr().(*net.TCPAddr).IP.IsLoopback() }
	})
	e.user("alice@example.org", "password-alice")
	c, err := gosmtp.Dial(e.sub)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice@example.org", "password-alice")); err != nil {
		t.Fatal(err)
	}
}

func (e *env) login(user, pass string) *gosmtp.Client {
	e.t.Helper()
	c := e.dialSubmission()
	if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func TestSubmissionSenderRules(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice@example.org", "password-alice")
	bob := e.user("bob@example.org", "password-bob")
	if err := e.dir.AddAlias(t.Context(), "alice@example.org", "sekretariat@example.org"); err != nil {
		t.Fatal(err)
	}
	c := e.login("alice@example.org", "password-alice")
	wantCode(t, c.Mail("bob@example.org", nil), "553 5.7.1")
	wantCode(t, c.Mail("", nil), "553 5.7.1")
	wantCode(t, c.Mail("someone@elsewhere.test", nil), "553 5.7.1")
	for name, from := range map[string]string{
		"From of another user":   "Bob <bob@example.org>",
		"From of another domain": "ceo@bank.test",
		"second author":          "alice@example.org, bob@example.org",
	} {
		err := send(c, "alice@example.org", []string{"bob@example.org"}, simpleMessage(from, "bob@example.org", "spoof", "x"))
		if smtpCode(err) != "553 5.7.1" {
			t.Errorf("%s: %s", name, smtpCode(err))
		}
		c.Reset()
	}
	err := send(c, "alice@example.org", []string{"bob@example.org"}, "Sender: bob@example.org\r\n"+simpleMessage("alice@example.org", "bob@example.org", "s", "x"))
	wantCode(t, err, "553 5.7.1")
	c.Reset()
	if n := len(messages(t, bob, store.RoleInbox)); n != 0 {
		t.Fatalf("spoofed mail stored: %d", n)
	}
	// An alias is one of alice's addresses, in MAIL FROM and in From.
	if err := send(c, "sekretariat@example.org", []string{"bob@example.org"}, simpleMessage("Sekretariat <sekretariat@example.org>", "bob@example.org", "alias", "x")); err != nil {
		t.Fatal(err)
	}
	if n := len(messages(t, bob, store.RoleInbox)); n != 1 {
		t.Fatalf("bob has %d messages", n)
	}
}

func TestSubmissionLocalDelivery(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.SaveSent = true })
	alice := e.user("alice@example.org", "password-alice")
	bob := e.user("bob@example.org", "password-bob")
	c := e.login("alice@example.org", "password-alice")
	msg := "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nBcc: secret@example.org\r\nSubject: local\r\n\r\nHi Bob, marker-local.\r\n"
	if err := send(c, "alice@example.org", []string{"bob@example.org"}, msg); err != nil {
		t.Fatal(err)
	}
	got := messages(t, bob, store.RoleInbox)
	if len(got) != 1 || !strings.Contains(got[0], "marker-local") {
		t.Fatalf("bob's INBOX: %q", got)
	}
	m := got[0]
	if strings.Contains(m, "secret@example.org") {
		t.Error("Bcc field delivered")
	}
	if headerOf(m, "Message-ID") == "" || headerOf(m, "Date") == "" {
		t.Error("Message-ID or Date not added")
	}
	if rcv := headerOf(m, "Received"); !strings.Contains(rcv, "with ESMTPSA") || strings.Contains(rcv, "127.0.0.1") {
		t.Errorf("Received: %s", rcv)
	}
	sent := messages(t, alice, store.RoleSent)
	if len(sent) != 1 || !strings.Contains(sent[0], "marker-local") {
		t.Fatalf("Sent copy: %d", len(sent))
	}
}

func TestSubmissionPartialFailureBounces(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.user("alice@example.org", "password-alice")
	bob := e.user("bob@example.org", "password-bob")
	carol := e.user("carol@example.org", "password-carol")
	if err := e.dir.SetQuota(t.Context(), "bob@example.org", 100); err != nil {
		t.Fatal(err)
	}
	c := e.login("alice@example.org", "password-alice")
	msg := simpleMessage("alice@example.org", "bob@example.org, carol@example.org", "partial", strings.Repeat("x", 500))
	// Carol's copy is stored, so the transaction succeeds; Bob's failure
	// comes back to Alice as a DSN.
	if err := send(c, "alice@example.org", []string{"bob@example.org", "carol@example.org"}, msg); err != nil {
		t.Fatal(err)
	}
	if len(messages(t, carol, store.RoleInbox)) != 1 || len(messages(t, bob, store.RoleInbox)) != 0 {
		t.Fatal("wrong copies")
	}
	dsn := waitMessages(t, alice, store.RoleInbox, 1)[0]
	for _, want := range []string{"Final-Recipient: rfc822; bob@example.org", "Status: 5.2.2", "Subject: partial"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("DSN lacks %q", want)
		}
	}
	// With every local copy failing, the client hears it.
	wantCode(t, send(c, "alice@example.org", []string{"bob@example.org"}, msg), "452 4.2.2")
}

func TestSubmissionFailedAuthCloses(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice@example.org", "password-alice")
	c := e.dialSubmission()
	for range 2 {
		wantCode(t, c.Auth(sasl.NewPlainClient("", "alice@example.org", "guess-guess")), "535 5.7.8")
	}
	wantCode(t, c.Auth(sasl.NewPlainClient("", "alice@example.org", "guess-guess")), "421 4.7.8")
	if err := c.Noop(); err == nil {
		t.Fatal("connection still open")
	}
}
