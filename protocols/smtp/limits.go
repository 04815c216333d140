package smtp

import (
	"net"
	"sync/atomic"
	"time"

	"kreide/protocols/connlimit"
)

// listener applies the per-address limit (s.conns, shared by all of the
// server's listeners) to ln: a connection over it is answered "421 4.7.0"
// (or, under implicit TLS, just closed) and never reaches the SMTP server.
func (s *Server) listener(ln net.Listener, implicitTLS bool) net.Listener {
	refuse := func(c net.Conn, _ string) {
		go func() {
			if !implicitTLS {
				c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				c.Write([]byte("421 4.7.0 " + s.o.Hostname + " too many connections from your address, try again later\r\n"))
			}
			c.Close()
		}()
	}
	return closeAfterWriteListener{connlimit.Listener(ln, s.conns, refuse)}
}

// closeAfterWriteListener wraps accepted connections in limitedConn.
type closeAfterWriteListener struct{ net.Listener }

func (l closeAfterWriteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &limitedConn{Conn: c}, nil
}

// limitedConn lets a session end its connection once the current reply is
// written (closeSoon).
type limitedConn struct {
	net.Conn
	closeAfterWrite atomic.Bool // set by a session that ends the connection
}

func (c *limitedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if c.closeAfterWrite.Load() {
		c.Close()
	}
	return n, err
}
