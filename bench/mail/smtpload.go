package mail

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"kreide/bench/benchkit"
)

// The SMTP client: other mail servers delivering to the school's users.

const (
	smtpMessageSize = 10 << 10
	// smtpPerConn is how many messages a connection carries before QUIT, as
	// a sending server empties its queue for one destination.
	smtpPerConn = 10
)

type smtpResult struct {
	start    time.Time
	lastSent time.Time // the last 250
	sent     int
	lat      benchkit.Latencies
	errs     int
	firstErr string
}

// smtpLoad sends total messages of 10 KiB over conns concurrent
// connections, each to one local user (in turn), from a remote sender.
// It times each transaction from MAIL FROM to the reply to the end of DATA.
func smtpLoad(ctx context.Context, addr string, users []string, conns, total int) *smtpResult {
	r := &smtpResult{}
	var next atomic.Int64
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		r.errs++
		if r.firstErr == "" {
			r.firstErr = err.Error()
		}
		mu.Unlock()
	}
	r.start = time.Now()
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				k := int(next.Add(smtpPerConn)) - smtpPerConn
				if k >= total {
					return
				}
				c, err := smtp.Dial(addr)
				if err != nil {
					fail(err)
					continue
				}
				if err := c.Hello("mx.sender.example"); err != nil {
					fail(err)
					c.Close()
					continue
				}
				for i := k; i < min(k+smtpPerConn, total); i++ {
					to := users[i%len(users)]
					msg := newMessage("bench@sender.example", to, i, smtpMessageSize)
					t := time.Now()
					err := sendOne(c, "bench@sender.example", to, msg)
					if err != nil {
						fail(err)
						break
					}
					r.lat.Add(time.Since(t))
					mu.Lock()
					r.sent++
					r.lastSent = time.Now()
					mu.Unlock()
				}
				c.Quit()
				c.Close()
			}
		}()
	}
	wg.Wait()
	return r
}

func sendOne(c *smtp.Client, from, to string, msg []byte) error {
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	if err := c.Rcpt(to, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	return w.Close()
}

// countMaildirs counts the messages delivered into the Maildirs (new/ and
// cur/).
func countMaildirs(dirs []string) int {
	n := 0
	for _, d := range dirs {
		for _, sub := range []string{"new", "cur"} {
			f, err := os.Open(d + "/" + sub)
			if err != nil {
				continue
			}
			names, _ := f.Readdirnames(-1)
			f.Close()
			n += len(names)
		}
	}
	return n
}

// waitMaildirs polls the Maildirs every 10 ms until they hold want
// messages, and returns when the last one arrived.
func waitMaildirs(ctx context.Context, dirs []string, want int, timeout time.Duration) (time.Time, int, error) {
	deadline := time.Now().Add(timeout)
	last, lastN := time.Now(), -1
	for {
		n := countMaildirs(dirs)
		if n != lastN {
			last, lastN = time.Now(), n
		}
		if n >= want {
			return last, n, nil
		}
		if time.Now().After(deadline) {
			return last, n, fmt.Errorf("%d of %d messages delivered after %v", n, want, timeout)
		}
		select {
		case <-ctx.Done():
			return last, n, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
