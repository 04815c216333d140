package smtp

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	gosmtp "github.com/emersion/go-smtp"

	"kreide/store"
)

func TestInboundDelivered(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.user("alice@example.org", "password-alice")
	c := e.dialMX("mta.sender.test")
	msg := simpleMessage("Bob <bob@sender.test>", "alice@example.org", "hello", "Hello Alice, marker-inbound-1.")
	if err := send(c, "bob@sender.test", []string{"Alice@Example.org"}, msg); err != nil {
		t.Fatal(err)
	}
	got := messages(t, alice, store.RoleInbox)
	if len(got) != 1 {
		t.Fatalf("INBOX has %d messages", len(got))
	}
	m := got[0]
	if !strings.HasSuffix(m, msg) {
		t.Errorf("stored message does not end with the sent one:\n%s", m)
	}
	if rcv := headerOf(m, "Received"); !strings.Contains(rcv, "from mta.sender.test ([127.0.0.1])") || !strings.Contains(rcv, "by mail.example.org") || !strings.Contains(rcv, "for <alice@example.org>") {
		t.Errorf("Received: %s", rcv)
	}
	ar := headerOf(m, "Authentication-Results")
	for _, want := range []string{"mail.example.org;", "spf=none", "dkim=none", "dmarc=none header.from=sender.test"} {
		if !strings.Contains(ar, want) {
			t.Errorf("Authentication-Results %q lacks %q", ar, want)
		}
	}
	if len(messages(t, alice, store.RoleJunk)) != 0 {
		t.Error("Junk is not empty")
	}
}

func TestInboundAliasAndBDAT(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.user("alice@example.org", "password-alice")
	if err := e.dir.AddAlias(t.Context(), "alice@example.org", "info@example.org"); err != nil {
		t.Fatal(err)
	}
	// go-smtp's client uses BDAT (CHUNKING) when offered? It does not, so
	// speak BDAT by hand.
	conn, err := net.Dial("tcp", e.mx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := simpleMessage("bob@sender.test", "info@example.org", "chunked", strings.Repeat("line of text\r\n", 1000))
	half := len(msg) / 2
	script := "EHLO mta.sender.test\r\nMAIL FROM:<bob@sender.test>\r\nRCPT TO:<info@example.org>\r\nRCPT TO:<alice@example.org>\r\n" +
		fmt.Sprintf("BDAT %d\r\n%s", half, msg[:half]) + fmt.Sprintf("BDAT %d LAST\r\n%s", len(msg)-half, msg[half:]) + "QUIT\r\n"
	if _, err := io.WriteString(conn, script); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(conn)
	if !strings.Contains(string(out), "CHUNKING") || strings.Count(string(out), "250 2.0.0") < 5 {
		t.Fatalf("session:\n%s", out)
	}
	got := messages(t, alice, store.RoleInbox)
	if len(got) != 1 { // login and alias name one account: one copy
		t.Fatalf("INBOX has %d messages", len(got))
	}
	if !strings.HasSuffix(got[0], msg) {
		t.Error("BDAT message differs")
	}
}

func TestInboundRecipientRules(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.user("alice@example.org", "password-alice")
	c := e.dialMX("mta.sender.test")
	if err := c.Mail("bob@sender.test", nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Rcpt("nobody@example.org", nil), "550 5.1.1")
	wantCode(t, c.Rcpt("victim@elsewhere.test", nil), "550 5.7.1")
	wantCode(t, c.Rcpt("not an address", nil), "501")
	// The transaction goes on for valid recipients.
	if err := c.Rcpt("alice@example.org", nil); err != nil {
		t.Fatal(err)
	}
	c.Reset()
	// An unauthenticated relay attempt through port 25 never works, not even
	// after a valid recipient.
	if err := send(c, "alice@example.org", []string{"victim@elsewhere.test"}, "Subject: x\r\n\r\nx\r\n"); smtpCode(err) != "550 5.7.1" {
		t.Fatalf("relay: %v", err)
	}
	if n := len(messages(t, alice, store.RoleInbox)); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
	q, _ := e.dir.Queue().List(t.Context())
	if len(q) != 0 {
		t.Fatalf("relay attempt queued %d messages", len(q))
	}
}

func TestInboundNoAuthOnMX(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dialMX("mta.sender.test")
	if ok, _ := c.Extension("AUTH"); ok {
		t.Fatal("port 25 advertises AUTH")
	}
}

// signed returns msg with a DKIM signature of domain/selector.
func signed(t *testing.T, key ed25519.PrivateKey, domain, selector, msg string) string {
	t.Helper()
	var b bytes.Buffer
	err := dkim.Sign(&b, strings.NewReader(msg), &dkim.SignOptions{Domain: domain, Selector: selector, Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func publishKey(t *testing.T, r *fakeResolver, domain, selector string) ed25519.PrivateKey {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r.setTXT(selector+"._domainkey."+domain, "v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(pub))
	return priv
}

func TestInboundAuthentication(t *testing.T) {
	type check struct {
		name     string
		records  map[string]string // TXT records
		dkim     string            // "valid", "forged", "other-domain" or ""
		wantCode string            // reply to DATA
		wantBox  string            // where it lands
		wantAR   []string
	}
	checks := []check{
		{name: "spf pass", records: map[string]string{"sender.test": "v=spf1 ip4:127.0.0.1 -all"},
			wantCode: "ok", wantBox: store.RoleInbox, wantAR: []string{"spf=pass smtp.helo=mta.sender.test smtp.mailfrom=bob@sender.test", "dkim=none", "dmarc=none"}},
		{name: "spf fail without dmarc goes to junk", records: map[string]string{"sender.test": "v=spf1 ip4:192.0.2.1 -all"},
			wantCode: "ok", wantBox: store.RoleJunk, wantAR: []string{"spf=fail", "dmarc=none"}},
		{name: "spf softfail", records: map[string]string{"sender.test": "v=spf1 ip4:192.0.2.1 ~all"},
			wantCode: "ok", wantBox: store.RoleInbox, wantAR: []string{"spf=softfail"}},
		{name: "dkim valid", dkim: "valid",
			wantCode: "ok", wantBox: store.RoleInbox, wantAR: []string{"dkim=pass header.d=sender.test header.i=@sender.test", "dmarc=none"}},
		{name: "dkim forged", dkim: "forged",
			wantCode: "ok", wantBox: store.RoleInbox, wantAR: []string{"dkim=fail reason=\"body hash did not verify\" header.d=sender.test"}},
		{name: "dmarc none", records: map[string]string{"sender.test": "v=spf1 ip4:192.0.2.1 -all", "_dmarc.sender.test": "v=DMARC1; p=none"},
			wantCode: "ok", wantBox: store.RoleInbox, wantAR: []string{"spf=fail", "dmarc=fail reason=\"p=none\" header.from=sender.test"}},
		{name: "dmarc quarantine", records: map[string]string{"sender.test": "v=spf1 ip4:192.0.2.1 -all", "_dmarc.sender.test": "v=DMARC1; p=quarantine"},
			wantCode: "ok", wantBox: store.RoleJunk, wantAR: []string{"dmarc=fail reason=\"p=quarantine\" header.from=sender.test"}},
		{name: "dmarc reject", records: map[string]string{"sender.test": "v=spf1 ip4:192.0.2.1 -all", "_dmarc.sender.test": "v=DMARC1; p=reject"},
			wantCode: "550 5.7.1"},
		{name: "dmarc reject with forged dkim", dkim: "forged", records: map[string]string{"_dmarc.sender.test": "v=DMARC1; p=reject"},
			wantCode: "550 5.7.1"},
		{name: "dmarc reject passes by aligned dkim", dkim: "valid", records: map[string]string{"sender.test": "v=spf1 ip4:192.0.2.1 -all", "_dmarc.sender.test": "v=DMARC1; p=reject"},
			wantCode: "ok", wantBox: store.RoleInbox, wantAR: []string{"spf=fail", "dkim=pass", "dmarc=pass header.from=sender.test"}},
		{name: "dmarc reject passes by aligned spf", records: map[string]string{"sender.test": "v=spf1 ip4:127.0.0.1 -all", "_dmarc.sender.test": "v=DMARC1; p=reject"},
			wantCode: "ok", wantBox: store.RoleInbox, wantAR: []string{"spf=pass", "dmarc=pass"}},
		{name: "dmarc unaligned dkim does not pass", dkim: "other-domain", records: map[string]string{"_dmarc.sender.test": "v=DMARC1; p=quarantine"},
			wantCode: "ok", wantBox: store.RoleJunk, wantAR: []string{"dkim=pass header.d=other.test", "dmarc=fail"}},
		{name: "dmarc of the organisational domain applies to a subdomain", records: map[string]string{"_dmarc.sender.test": "v=DMARC1; p=none; sp=reject"},
			wantCode: "550 5.7.1"},
	}
	for _, tc := range checks {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			alice := e.user("alice@example.org", "password-alice")
			for k, v := range tc.records {
				e.res.setTXT(k, v)
			}
			from := "bob@sender.test"
			if strings.Contains(tc.name, "subdomain") {
				from = "bob@news.sender.test"
			}
			msg := simpleMessage(from, "alice@example.org", "auth", "Body text.\r\nmarker-auth")
			switch tc.dkim {
			case "valid":
				msg = signed(t, publishKey(t, e.res, "sender.test", "s1"), "sender.test", "s1", msg)
			case "forged":
				msg = strings.Replace(signed(t, publishKey(t, e.res, "sender.test", "s1"), "sender.test", "s1", msg), "Body text.", "Pay here.", 1)
			case "other-domain":
				msg = signed(t, publishKey(t, e.res, "other.test", "s1"), "other.test", "s1", msg)
			}
			c := e.dialMX("mta.sender.test")
			err := send(c, from, []string{"alice@example.org"}, msg)
			wantCode(t, err, tc.wantCode)
			inbox, junk := messages(t, alice, store.RoleInbox), messages(t, alice, store.RoleJunk)
			if tc.wantBox == "" {
				if len(inbox)+len(junk) != 0 {
					t.Fatal("a rejected message was stored")
				}
				return
			}
			got := inbox
			if tc.wantBox == store.RoleJunk {
				got = junk
			}
			if len(got) != 1 || len(inbox)+len(junk) != 1 {
				t.Fatalf("inbox %d, junk %d; want one in %s", len(inbox), len(junk), tc.wantBox)
			}
			ar := headerOf(got[0], "Authentication-Results")
			for _, w := range tc.wantAR {
				if !strings.Contains(ar, w) {
					t.Errorf("Authentication-Results %q lacks %q", ar, w)
				}
			}
		})
	}
}

func TestInboundForgedAuthResultsRemoved(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.user("alice@example.org", "password-alice")
	msg := "Authentication-Results: mail.example.org; dkim=pass header.d=bank.test\r\n" +
		"Authentication-Results: other.host; spf=pass\r\n" +
		simpleMessage("bob@sender.test", "alice@example.org", "forged", "x")
	if err := send(e.dialMX("mta.sender.test"), "bob@sender.test", []string{"alice@example.org"}, msg); err != nil {
		t.Fatal(err)
	}
	m := messages(t, alice, store.RoleInbox)[0]
	if strings.Contains(m, "bank.test") {
		t.Error("forged Authentication-Results of this host kept")
	}
	if !strings.Contains(m, "other.host; spf=pass") {
		t.Error("another host's Authentication-Results removed")
	}
}

func TestInboundLimits(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.MaxMessageSize = 4096
		o.MaxRecipients = 2
		o.MaxFailedRcpts = 3
	})
	alice := e.user("alice@example.org", "password-alice")
	e.user("bob@example.org", "password-bob")
	e.user("carol@example.org", "password-carol")

	t.Run("size", func(t *testing.T) {
		c := e.dialMX("mta.sender.test")
		big := simpleMessage("x@sender.test", "alice@example.org", "big", strings.Repeat("0123456789abcdef\r\n", 400))
		wantCode(t, send(c, "x@sender.test", []string{"alice@example.org"}, big), "552 5.3.4")
		// SIZE announced in MAIL FROM is refused at once.
		c2 := e.dialMX("mta.sender.test")
		wantCode(t, c2.Mail("x@sender.test", &gosmtp.MailOptions{Size: 1 << 20}), "552 5.3.4")
	})
	t.Run("recipients", func(t *testing.T) {
		c := e.dialMX("mta.sender.test")
		c.Mail("x@sender.test", nil)
		c.Rcpt("alice@example.org", nil)
		c.Rcpt("bob@example.org", nil)
		wantCode(t, c.Rcpt("carol@example.org", nil), "452 4.5.3")
	})
	t.Run("failed recipients close the connection", func(t *testing.T) {
		c := e.dialMX("mta.sender.test")
		c.Mail("x@sender.test", nil)
		for i := range 3 {
			wantCode(t, c.Rcpt(fmt.Sprintf("nobody%d@example.org", i), nil), "550 5.1.1")
		}
		wantCode(t, c.Rcpt("alice@example.org", nil), "421 4.7.0")
		if err := c.Noop(); err == nil {
			t.Fatal("connection still open")
		}
	})
	t.Run("malformed", func(t *testing.T) {
		for name, msg := range map[string]string{
			"no colon":   "From bob@sender.test\r\nSubject: x\r\n\r\nbody\r\n",
			"no from":    "Subject: x\r\n\r\nbody\r\n",
			"two froms":  "From: a@sender.test\r\nFrom: b@sender.test\r\n\r\nx\r\n",
			"empty":      "",
			"continued":  " folded first line\r\n\r\nx\r\n",
			"bad from":   "From: <<>>\r\n\r\nx\r\n",
			"two people": "From: a@sender.test, b@sender.test\r\n\r\nx\r\n",
		} {
			c := e.dialMX("mta.sender.test")
			if err := send(c, "x@sender.test", []string{"alice@example.org"}, msg); err == nil || !strings.HasPrefix(smtpCode(err), "55") {
				t.Errorf("%s: %v", name, smtpCode(err))
			}
		}
		big := "Subject: " + strings.Repeat("x", 300) + "\r\n"
		e2 := newEnv(t, nil)
		e2.user("alice@example.org", "password-alice")
		c := e2.dialMX("mta.sender.test")
		wantCode(t, send(c, "x@sender.test", []string{"alice@example.org"}, "From: a@sender.test\r\n"+strings.Repeat(big, 1000)+"\r\nx\r\n"), "552 5.3.4")
	})
	if n := len(messages(t, alice, store.RoleInbox)) + len(messages(t, alice, store.RoleJunk)); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
}

func TestConnectionsPerIP(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxConnsPerIP = 2 })
	e.dialMX("a.test")
	e.dialMX("b.test")
	conn, err := net.Dial("tcp", e.mx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	out, _ := io.ReadAll(conn)
	if !strings.HasPrefix(string(out), "421 4.7.0") {
		t.Fatalf("third connection got %q", out)
	}
}

func TestInboundOverQuotaAndLoop(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.user("alice@example.org", "password-alice")
	if err := e.dir.SetQuota(t.Context(), "alice@example.org", 100); err != nil {
		t.Fatal(err)
	}
	msg := simpleMessage("bob@sender.test", "alice@example.org", "full", strings.Repeat("x", 500))
	wantCode(t, send(e.dialMX("mta.sender.test"), "bob@sender.test", []string{"alice@example.org"}, msg), "452 4.2.2")

	if err := e.dir.SetQuota(t.Context(), "alice@example.org", 1<<30); err != nil {
		t.Fatal(err)
	}
	loop := strings.Repeat("Received: from a by b; Mon, 02 Jan 2006 15:04:05 +0000\r\n", 51) + msg
	wantCode(t, send(e.dialMX("mta.sender.test"), "bob@sender.test", []string{"alice@example.org"}, loop), "554 5.4.6")
	if n := len(messages(t, alice, store.RoleInbox)); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
}
