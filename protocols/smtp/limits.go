package smtp

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ipLimiter counts open connections per remote address across all of the
// server's listeners.
type ipLimiter struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

func newIPLimiter(max int) *ipLimiter { return &ipLimiter{max: max, n: make(map[string]int)} }

func (l *ipLimiter) acquire(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[ip] >= l.max {
		return false
	}
	l.n[ip]++
	return true
}

func (l *ipLimiter) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[ip]--; l.n[ip] <= 0 {
		delete(l.n, ip)
	}
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

// listener wraps ln so that a connection over the per-address limit is
// answered "421 4.7.0" (or, under implicit TLS, just closed) and never reaches
// the SMTP server.
func (l *ipLimiter) listener(ln net.Listener, hostname string, implicitTLS bool) net.Listener {
	return &limitListener{Listener: ln, l: l, hostname: hostname, implicitTLS: implicitTLS}
}

type limitListener struct {
	net.Listener
	l           *ipLimiter
	hostname    string
	implicitTLS bool
}

func (ll *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := hostOf(c.RemoteAddr())
		if ll.l.acquire(ip) {
			return &limitedConn{Conn: c, release: sync.OnceFunc(func() { ll.l.release(ip) })}, nil
		}
		go func() {
			if !ll.implicitTLS {
				c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				c.Write([]byte("421 4.7.0 " + ll.hostname + " too many connections from your address, try again later\r\n"))
			}
			c.Close()
		}()
	}
}

type limitedConn struct {
	net.Conn
	release         func()
	closeAfterWrite atomic.Bool // set by a session that ends the connection
}

func (c *limitedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if c.closeAfterWrite.Load() {
		c.Close()
	}
	return n, err
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
