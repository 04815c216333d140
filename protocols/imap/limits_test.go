package imap

import (
	"net"
	"strings"
	"testing"
	"time"
)

// A synchronizing literal over 4 KiB outside APPEND: go-imap (v2.0.0-beta.8)
// drops its own NO [TOOBIG] and waits for more input, so the client gets no
// answer. The connection must not stay open: the read timeouts close it.
func TestOversizedLiteralTimesOut(t *testing.T) {
	e := newEnv(t, withTimeouts(timeouts{unauth: 500 * time.Millisecond, auth: time.Minute, idle: time.Minute}))
	rc := e.raw()
	start := time.Now()
	if _, err := rc.c.Write([]byte("a LOGIN {100000}\r\n")); err != nil {
		t.Fatal(err)
	}
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got strings.Builder
	buf := make([]byte, 512)
	for {
		n, err := rc.r.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("connection still open after 10s (got %q)", got.String())
			}
			break
		}
	}
	if strings.HasPrefix(got.String(), "+") {
		t.Fatalf("server asked for the oversized literal: %q", got.String())
	}
	t.Logf("closed after %v, answer %q", time.Since(start).Round(time.Millisecond), got.String())
}
