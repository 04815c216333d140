// Package connlimit counts open connections per key (a client's address, an
// account) for the protocol frontends, so one client cannot take the
// server's file descriptors and memory from the others.
package connlimit

import (
	"net"
	"sync"
)

// Counter admits at most max holders per key at a time.
type Counter struct {
	max int // <= 0: no limit
	mu  sync.Mutex
	n   map[string]int
}

// New returns a counter with max per key (max <= 0: unlimited, but still
// counted).
func New(max int) *Counter { return &Counter{max: max, n: make(map[string]int)} }

// Acquire takes a place for key, or reports false if key has max already.
func (c *Counter) Acquire(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max > 0 && c.n[key] >= c.max {
		return false
	}
	c.n[key]++
	return true
}

// Release gives back a place Acquire took.
func (c *Counter) Release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key]--; c.n[key] <= 0 {
		delete(c.n, key)
	}
}

// Host is the IP address of a remote address, the key for per-address limits.
func Host(a net.Addr) string {
	if a == nil {
		return ""
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// Listener hands out ln's connections while their address is within c's
// limit; each gives its place back when closed. A connection over the limit
// goes to refuse (which must close it, and should not block) and is not
// returned.
func Listener(ln net.Listener, c *Counter, refuse func(conn net.Conn, host string)) net.Listener {
	return &listener{Listener: ln, c: c, refuse: refuse}
}

type listener struct {
	net.Listener
	c      *Counter
	refuse func(net.Conn, string)
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host := Host(conn.RemoteAddr())
		if l.c.Acquire(host) {
			return &counted{Conn: conn, release: sync.OnceFunc(func() { l.c.Release(host) })}, nil
		}
		l.refuse(conn, host)
	}
}

type counted struct {
	net.Conn
	release func()
}

func (c *counted) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
