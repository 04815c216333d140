package dav

import (
	"net"
	"testing"
	"time"

	"kreide/protocols/dav/davauth"
	"kreide/store/storetest"
)

// One address gets at most MaxConnsPerIP connections; when one closes, the
// next is served.
func TestConnectionsPerIPCapped(t *testing.T) {
	dir := storetest.Open(t)
	storetest.User(t, dir, stallUser, stallPass)
	s := New(Options{Dir: dir, AllowPlaintext: davauth.IsLoopback, MaxConnsPerIP: 2})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	addr := ln.Addr().String()

	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// served reports whether a request on c gets an answer.
	served := func(c net.Conn) bool {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			return false
		}
		buf := make([]byte, 12)
		n, _ := c.Read(buf)
		return n == len(buf) && string(buf[:9]) == "HTTP/1.1 "
	}
	a, b := dial(), dial()
	if !served(a) || !served(b) {
		t.Fatal("the first two connections were not served")
	}
	if c := dial(); served(c) {
		t.Fatal("a third connection from the same address was served")
	}
	a.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !served(dial()) {
		if time.Now().After(deadline) {
			t.Fatal("no connection served after one of the two closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
