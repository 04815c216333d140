package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"kreide/store"
)

// TestFailedLoginsSlowDown: after a few failures on one login, further
// attempts wait, for existing and unknown accounts alike; one client trying
// many logins is slowed too; a correct password still works afterwards (it is
// slowed, not locked out).
func TestFailedLoginsSlowDown(t *testing.T) {
	d := Open(t)
	if _, err := d.CreateAccount(ctx, "t@example.org", "password1"); err != nil {
		t.Fatal(err)
	}
	for i, login := range []string{"t@example.org", "nobody@example.org"} {
		attacker := store.WithRemoteHost(ctx, fmt.Sprintf("203.0.113.%d:5555", i))
		for range 4 {
			if _, err := d.Login(attacker, login, "guess", store.ScopeIMAP); !errors.Is(err, store.ErrAuthFailed) {
				t.Fatal(err)
			}
		}
		start := time.Now()
		_, err := d.Login(attacker, login, "guess", store.ScopeIMAP)
		if !errors.Is(err, store.ErrAuthFailed) {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited < 250*time.Millisecond {
			t.Fatalf("%s: attempt after failures answered in %v, want a delay", login, waited)
		}
	}
	// One client spraying many logins.
	sprayer := store.WithRemoteHost(ctx, "192.0.2.1:1")
	for i := range 11 {
		d.Login(sprayer, fmt.Sprintf("guess%d@example.org", i), "x", store.ScopeIMAP)
	}
	start := time.Now()
	d.Login(sprayer, "fresh@example.org", "x", store.ScopeIMAP)
	if time.Since(start) < 250*time.Millisecond {
		t.Fatal("no per-client delay after many failures")
	}
	// Another client trying the same account is slowed too (per-account count).
	other := store.WithRemoteHost(ctx, "198.51.100.9:1")
	start = time.Now()
	a, err := d.Login(other, "t@example.org", "password1", store.ScopeIMAP)
	if err != nil {
		t.Fatalf("right password after an attack: %v", err)
	}
	a.Close()
	if time.Since(start) < 250*time.Millisecond {
		t.Fatal("per-account delay not applied to another client")
	}
}
