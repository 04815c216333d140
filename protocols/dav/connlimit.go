package dav

import (
	"net"
	"sync"
)

// limitListener caps simultaneous connections from one address (the
// config's max_conns_per_ip): one client opening hundreds of connections
// must not take the server's file descriptors and memory from the others.
// A connection over the cap is closed at once; HTTP clients retry.
type limitListener struct {
	net.Listener
	max    int
	onDrop func(ip string)

	mu sync.Mutex
	n  map[string]int
}

func newLimitListener(ln net.Listener, max int, onDrop func(ip string)) net.Listener {
	if max <= 0 {
		return ln
	}
	return &limitListener{Listener: ln, max: max, onDrop: onDrop, n: make(map[string]int)}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := hostOf(c.RemoteAddr())
		l.mu.Lock()
		ok := l.n[ip] < l.max
		if ok {
			l.n[ip]++
		}
		l.mu.Unlock()
		if ok {
			return &limitedConn{Conn: c, release: func() { l.release(ip) }}, nil
		}
		c.Close()
		if l.onDrop != nil {
			l.onDrop(ip)
		}
	}
}

func (l *limitListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[ip]--; l.n[ip] <= 0 {
		delete(l.n, ip)
	}
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}
