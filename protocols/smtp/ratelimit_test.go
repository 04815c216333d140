package smtp

import (
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// TestFailedAuthSlowedPerClient: one client trying many different login
// names over AUTH PLAIN and AUTH LOGIN is slowed down. Each name fails only
// once, so only the per-client count in store.Directory.Login can cause the
// delay: the session must pass the connection's address to it.
func TestFailedAuthSlowedPerClient(t *testing.T) {
	e := newEnv(t, nil)
	e.user("anna@example.org", "anna password")
	dial := func() *gosmtp.Client {
		c, err := gosmtp.DialStartTLS(e.sub, &tls.Config{RootCAs: e.roots, ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	mechs := []func(user string) sasl.Client{
		func(user string) sasl.Client { return sasl.NewPlainClient("", user, "wrong") },
		func(user string) sasl.Client { return sasl.NewLoginClient(user, "wrong") },
	}
	try := func(c *gosmtp.Client, i int) time.Duration {
		start := time.Now()
		err := c.Auth(mechs[i%2](fmt.Sprintf("guess%d@example.org", i)))
		wantCode(t, err, "535")
		return time.Since(start)
	}
	// 10 free failures per client; a connection is closed after 3.
	for i := 0; i < 10; i += 2 {
		c := dial()
		try(c, i)
		try(c, i+1)
		c.Close()
	}
	c := dial()
	d1 := try(c, 10) // PLAIN
	d2 := try(c, 11) // LOGIN
	t.Logf("11th and 12th failed AUTH from one client took %v and %v", d1, d2)
	if d1 < 200*time.Millisecond || d2 < 400*time.Millisecond {
		t.Fatalf("failed AUTH after 10 failures from one client answered in %v and %v, want >= 250ms and 500ms", d1, d2)
	}
	c = dial()
	if err := c.Auth(sasl.NewPlainClient("", "anna@example.org", "anna password")); err != nil {
		t.Fatalf("correct password after the failures: %v", err)
	}
}
