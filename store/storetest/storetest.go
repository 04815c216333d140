// Package storetest holds the store's conformance and crash tests, and
// helpers that other packages' tests use to get a store quickly.
package storetest

import (
	"context"
	"testing"

	"kreide/crypto"
	"kreide/store"
)

// FastArgon2 gives cheap password hashing parameters for tests only.
func FastArgon2() crypto.Argon2Params {
	p := crypto.NewArgon2Params()
	p.Time, p.MemoryKiB, p.Threads = 1, 64, 1
	return p
}

// Options are store options for tests: cheap Argon2, quick idle close.
func Options() store.Options {
	return store.Options{Argon2: FastArgon2}
}

// Open opens a store in a temporary dir with domain example.org and closes
// it when the test ends.
func Open(t testing.TB) *store.Directory {
	t.Helper()
	d, err := store.Open(t.TempDir(), Options())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.AddDomain(context.Background(), "example.org"); err != nil {
		t.Fatal(err)
	}
	return d
}

// User creates an account and returns it unlocked, with its recovery code.
func User(t testing.TB, d *store.Directory, login, password string) (*store.Account, string) {
	t.Helper()
	ctx := context.Background()
	c, err := d.CreateAccount(ctx, login, password)
	if err != nil {
		t.Fatal(err)
	}
	a, err := d.Login(ctx, login, password, store.ScopeIMAP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, c.RecoveryCode
}
