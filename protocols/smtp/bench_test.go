package smtp

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	gosmtp "github.com/emersion/go-smtp"
)

// BenchmarkInbound10KiB delivers 10 KiB messages over 20 concurrent port-25
// connections (SPF, DKIM and DMARC lookups answered "none" by the fake
// resolver) and reports messages per second. Each message is durable when
// its 250 arrives.
func BenchmarkInbound10KiB(b *testing.B) {
	const conns = 20
	e := newEnv(b, func(o *Options) { o.MaxConnsPerIP = conns * 2 })
	e.user("alice@example.org", "password-alice")
	body := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n", 10<<10/60)
	msg := simpleMessage("Bob <bob@sender.test>", "alice@example.org", "bench", body)
	clients := make([]*gosmtp.Client, conns)
	for i := range clients {
		clients[i] = e.dialMX("mta.sender.test")
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := send(c, "bob@sender.test", []string{"alice@example.org"}, msg); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
