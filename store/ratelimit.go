package store

import (
	"context"
	"net"
	"sync"
	"time"
)

// Failed logins slow down brute force across every protocol, because every
// protocol logs in through Directory.Login. Failures are counted per client
// IP and per login name (whether or not the account exists, so the answer
// and its timing do not tell). After a few free failures each further
// attempt waits longer, doubling up to a cap; the counts fade after a window.
const (
	freeFailures   = 3  // per login name
	freeFromIP     = 10 // per client IP: a school's NAT shares one address
	firstDelay     = 250 * time.Millisecond
	maxDelay       = 15 * time.Second
	failureWindow  = 15 * time.Minute
	maxTrackedKeys = 200000
)

type remoteKey struct{}

// WithRemote records the client's address in ctx, so Login can limit failed
// attempts per client. Frontends call it with the connection's remote address.
func WithRemote(ctx context.Context, addr net.Addr) context.Context {
	if addr == nil {
		return ctx
	}
	host := addr.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return context.WithValue(ctx, remoteKey{}, host)
}

// WithRemoteHost is WithRemote for an address already in "host:port" or
// "host" form (HTTP's RemoteAddr).
func WithRemoteHost(ctx context.Context, hostport string) context.Context {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return context.WithValue(ctx, remoteKey{}, host)
}

func remoteOf(ctx context.Context) string {
	s, _ := ctx.Value(remoteKey{}).(string)
	return s
}

type failures struct {
	n    int
	last time.Time
}

type loginLimiter struct {
	mu sync.Mutex
	m  map[string]*failures
}

func newLoginLimiter() *loginLimiter {
	return &loginLimiter{m: make(map[string]*failures)}
}

func (l *loginLimiter) count(key string, now time.Time) int {
	f := l.m[key]
	if f == nil {
		return 0
	}
	if now.Sub(f.last) > failureWindow {
		delete(l.m, key)
		return 0
	}
	return f.n
}

// delay is how long an attempt from ip for login must wait first.
func (l *loginLimiter) delay(ip, login string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	over := l.count("login|"+login, now) - freeFailures
	if ip != "" {
		over = max(over, l.count("ip|"+ip, now)-freeFromIP)
	}
	if over < 0 {
		return 0
	}
	d := firstDelay << min(over, 10)
	return min(d, maxDelay)
}

func (l *loginLimiter) fail(ip, login string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if len(l.m) >= maxTrackedKeys {
		for k, f := range l.m { // drop what has faded; if nothing has, start over
			if now.Sub(f.last) > failureWindow {
				delete(l.m, k)
			}
		}
		if len(l.m) >= maxTrackedKeys {
			clear(l.m)
		}
	}
	keys := []string{"login|" + login}
	if ip != "" { // unknown for internal callers: count the login only
		keys = append(keys, "ip|"+ip)
	}
	for _, k := range keys {
		f := l.m[k]
		if f == nil || now.Sub(f.last) > failureWindow {
			f = &failures{}
			l.m[k] = f
		}
		f.n++
		f.last = now
	}
}

// succeed forgets the failures of this login from this client: a teacher who
// mistyped twice is not slowed down later.
func (l *loginLimiter) succeed(ip, login string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, "login|"+login)
	if f := l.m["ip|"+ip]; f != nil && f.n > 0 {
		f.n--
	}
}

// wait sleeps for the current delay of ip and login, or until ctx ends.
func (l *loginLimiter) wait(ctx context.Context, ip, login string) error {
	d := l.delay(ip, login)
	if d == 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
