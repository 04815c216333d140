package protocols

import (
	"context"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-msgauth/dkim"

	"kreide/internal/interop"
	"kreide/protocols/smtp"
)

// TestSwaksAgainstKreideServe: swaks submits over STARTTLS with AUTH to a
// local user of the whole server; the message is read back over IMAP and
// its DKIM signatures verify against the keys `kreide dns` publishes. A relay
// attempt without AUTH and sending as another user's address are refused.
func TestSwaksAgainstKreideServe(t *testing.T) {
	swaks := interop.Need(t, "swaks", "swaks")
	srv, d := wholeServer(t)
	ctx := context.Background()
	if _, err := d.CreateAccount(ctx, "ben@example.org", "password2"); err != nil {
		t.Fatal(err)
	}
	swak := func(addr string, args ...string) (string, error) {
		host, port, _ := net.SplitHostPort(addr)
		out, err := exec.Command(swaks, append([]string{"--server", host, "--port", port}, args...)...).CombinedOutput()
		return string(out), err
	}

	out, err := swak(srv.Addr("listen.submission").String(), "--tls", "--auth", "PLAIN",
		"--auth-user", "t@example.org", "--auth-password", "password1",
		"--from", "t@example.org", "--to", "ben@example.org",
		"--header", "Subject: Elternabend", "--body", "Liebe Eltern, am Dienstag ist Elternabend.")
	if err != nil {
		t.Fatalf("swaks submission: %v\n%s", err, out)
	}

	c, err := imapclient.DialTLS(srv.Addr("listen.imaps").String(), &imapclient.Options{TLSConfig: insecureTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("ben@example.org", "password2").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %v (%d messages)", err, len(msgs))
	}
	var raw []byte
	for _, b := range msgs[0].BodySection {
		raw = b.Bytes
	}
	if !strings.Contains(string(raw), "Elternabend") {
		t.Fatalf("message over IMAP:\n%s", raw)
	}
	recs, err := smtp.DNSRecords(ctx, d, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	txt := map[string]string{}
	for _, r := range recs {
		if r.Type == "TXT" {
			txt[r.Name] = r.Value
		}
	}
	verifs, err := dkim.VerifyWithOptions(strings.NewReader(string(raw)), &dkim.VerifyOptions{
		LookupTXT: func(domain string) ([]string, error) {
			if v, ok := txt[strings.TrimSuffix(domain, ".")]; ok {
				return []string{v}, nil
			}
			return nil, io.EOF
		},
	})
	if err != nil || len(verifs) != 2 {
		t.Fatalf("DKIM: %v, %d signatures", err, len(verifs))
	}
	for _, v := range verifs {
		if v.Err != nil || v.Domain != "example.org" {
			t.Fatalf("signature of %s: %v", v.Domain, v.Err)
		}
	}

	// No open relay: mail for a foreign domain without AUTH, on the MX port.
	out, err = swak(srv.Addr("listen.smtp").String(), "--from", "someone@elsewhere.test", "--to", "victim@other.test")
	if err == nil || !strings.Contains(out, "550") {
		t.Fatalf("relay attempt was not refused with 550: %v\n%s", err, out)
	}
	// Sending as another user's address, authenticated as t@.
	out, err = swak(srv.Addr("listen.submission").String(), "--tls", "--auth", "PLAIN",
		"--auth-user", "t@example.org", "--auth-password", "password1",
		"--from", "ben@example.org", "--to", "ben@example.org")
	if err == nil || !strings.Contains(out, "553") {
		t.Fatalf("sending as another user was not refused with 553: %v\n%s", err, out)
	}
}
