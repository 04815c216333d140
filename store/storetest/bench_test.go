package storetest

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kreide/crypto"
	"kreide/store"
)

var tenKiB = "Subject: benchmark\r\nFrom: a@example.org\r\nTo: b@example.org\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", 10240/18)

// BenchmarkDeliverLocked: locked-path delivery of 10 KiB messages by 8
// concurrent senders to 8 different accounts (target: 1,500 msgs/s).
func BenchmarkDeliverLocked(b *testing.B) {
	d := Open(b)
	var ids []string
	for i := range 8 {
		c, err := d.CreateAccount(ctx, fmt.Sprintf("u%d@example.org", i), "password1")
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, c.Account.ID)
	}
	var n atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for s := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n.Add(1) <= int64(b.N) {
				if _, err := d.Deliver(ctx, []store.Recipient{{AccountID: ids[s]}}, strings.NewReader(tenKiB)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkEnvelopes10k: read the envelope data of 10,000 messages of an
// unlocked account (target: under 50 ms).
func BenchmarkEnvelopes10k(b *testing.B) {
	d := Open(b)
	a, _ := User(b, d, "t@example.org", "password1")
	inbox, _ := a.MailboxByName(ctx, "INBOX")
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 10000; i += 8 {
				msg := fmt.Sprintf("From: Sender %d <s%d@example.org>\r\nTo: t@example.org\r\nSubject: Message number %d\r\nDate: Mon, 2 Mar 2026 10:00:00 +0100\r\nMessage-ID: <%d@example.org>\r\n\r\nbody\r\n", i, i, i, i)
				if _, err := a.Append(ctx, inbox.ID, strings.NewReader(msg), nil, time.Time{}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ResetTimer()
	for range b.N {
		n := 0
		err := a.Messages(ctx, inbox.ID, nil, store.FetchOptions{Envelope: true}, func(m *store.Message) error {
			if m.Envelope.Subject == "" || len(m.Envelope.From) != 1 {
				return fmt.Errorf("no subject")
			}
			n++
			return nil
		})
		if err != nil || n != 10000 {
			b.Fatal(err, n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/10k")
}

// BenchmarkUnlockAppPassword: a login with an app password, not served from
// the in-memory unlock cache (target: under 1 ms).
func BenchmarkUnlockAppPassword(b *testing.B) {
	opts := Options()
	opts.UnlockCacheTTL = time.Nanosecond
	d, err := store.Open(b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	d.AddDomain(ctx, "example.org")
	d.CreateAccount(ctx, "t@example.org", "password1")
	token, err := d.AddAppPassword(ctx, "t@example.org", "password1", "phone", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		a, err := d.Login(ctx, "t@example.org", token, store.ScopeIMAP)
		if err != nil {
			b.Fatal(err)
		}
		a.Close()
	}
}

// BenchmarkUnlockPassword: a password login with the production Argon2id
// parameters (64 MiB, t=3, p=4), not cached (target: under 500 ms).
func BenchmarkUnlockPassword(b *testing.B) {
	d, err := store.Open(b.TempDir(), store.Options{Argon2: crypto.NewArgon2Params, UnlockCacheTTL: time.Nanosecond})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	d.AddDomain(ctx, "example.org")
	if _, err := d.CreateAccount(ctx, "t@example.org", "password1"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		a, err := d.Login(ctx, "t@example.org", "password1", store.ScopeIMAP)
		if err != nil {
			b.Fatal(err)
		}
		a.Close()
	}
}

// BenchmarkOpen33k: opening a data dir with 33,000 accounts, which is what
// serve does at start (target: under 1 s). Creating them takes a while.
func BenchmarkOpen33k(b *testing.B) {
	dir := b.TempDir()
	d, err := store.Open(dir, Options())
	if err != nil {
		b.Fatal(err)
	}
	d.AddDomain(ctx, "example.org")
	created := time.Now()
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= 33000; i = next.Add(1) {
				if _, err := d.CreateAccount(ctx, fmt.Sprintf("user%d@example.org", i), "password1"); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	d.Close()
	b.Logf("created 33,000 accounts in %v", time.Since(created))
	b.ResetTimer()
	for range b.N {
		d, err := store.Open(dir, Options())
		if err != nil {
			b.Fatal(err)
		}
		if n, _ := d.CountAccounts(ctx); n != 33000 {
			b.Fatal(n)
		}
		d.Close()
	}
}
