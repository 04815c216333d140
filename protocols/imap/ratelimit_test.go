package imap

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestFailedLoginsSlowedPerClient: one client trying many different login
// names is slowed down. Each name fails only once, so only the per-client
// count in store.Directory.Login can cause the delay: the session must pass
// the connection's address to it.
func TestFailedLoginsSlowedPerClient(t *testing.T) {
	e := newEnv(t)
	try := func(rc *rawConn, i int) time.Duration {
		start := time.Now()
		if _, done := rc.cmd(`LOGIN guess%d@example.org "wrong"`, i); !strings.HasPrefix(done, "NO") {
			t.Fatalf("LOGIN %d: %q", i, done)
		}
		return time.Since(start)
	}
	// 10 failures are free per client (a school's NAT shares one address);
	// the server drops a connection after 3, so use several.
	i := 0
	for i < 10 {
		rc := e.rawT(t)
		for j := 0; j < 2 && i < 10; j++ {
			try(rc, i)
			i++
		}
		rc.c.Close()
	}
	rc := e.rawT(t)
	if d := try(rc, i); d < 200*time.Millisecond {
		t.Fatalf("11th failed login from one client answered in %v, want it slowed (>= 250ms)", d)
	} else {
		t.Logf("11th failed login from one client took %v", d)
	}
	if d := try(rc, i+1); d < 400*time.Millisecond {
		t.Fatalf("12th failed login answered in %v, want >= 500ms", d)
	}
	// The right password from this client still works (slowed, not locked out).
	rc = e.rawT(t)
	if _, done := rc.cmd(`LOGIN %s %s`, testUser, fmt.Sprintf("%q", testPass)); !strings.HasPrefix(done, "OK") {
		t.Fatalf("correct login after the failures: %q", done)
	}
}
