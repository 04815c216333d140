package store

import (
	"context"
	"sync"
	"testing"

	"kreide/crypto"
)

// Connections that log in to one account at the same moment (a phone
// opening several IMAP connections after a restart) share one Argon2 run;
// a wrong password among them still fails.
func TestConcurrentLoginsShareOnePasswordCheck(t *testing.T) {
	ctx := context.Background()
	// Costly enough (16 MiB) that the logins overlap.
	params := func() crypto.Argon2Params {
		p := crypto.NewArgon2Params()
		p.Time, p.MemoryKiB, p.Threads = 1, 16<<10, 1
		return p
	}
	d, err := Open(t.TempDir(), Options{Argon2: params})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.AddDomain(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateAccount(ctx, "bob@example.org", "secret one"); err != nil {
		t.Fatal(err)
	}
	d.unlock = newUnlockCache(d.opts.UnlockCacheTTL) // forget the login of CreateAccount, if any
	before := d.argonRuns.Load()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := d.Login(ctx, "bob@example.org", "secret one", ScopeIMAP)
			if err == nil {
				a.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("login: %v", err)
		}
	}
	if runs := d.argonRuns.Load() - before; runs != 1 {
		t.Fatalf("8 concurrent logins ran Argon2 %d times, want 1", runs)
	}
	if _, err := d.Login(ctx, "bob@example.org", "secret two", ScopeIMAP); err == nil {
		t.Fatal("wrong password accepted")
	}
}
