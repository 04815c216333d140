package connlimit

import (
	"net"
	"testing"
)

func TestCounter(t *testing.T) {
	c := New(2)
	for i := range 2 {
		if !c.Acquire("a") {
			t.Fatalf("place %d for a refused", i+1)
		}
	}
	if c.Acquire("a") {
		t.Fatal("a third place for a was given")
	}
	if !c.Acquire("b") {
		t.Fatal("b was refused because of a")
	}
	c.Release("a")
	if !c.Acquire("a") {
		t.Fatal("a's released place was not given again")
	}
	u := New(0)
	for range 3 {
		if !u.Acquire("x") {
			t.Fatal("an unlimited counter refused")
		}
	}
}

// One connection per address: a second is refused while the first is
// open, and closing the first (even twice) frees exactly one place.
func TestListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	refused := make(chan string, 4)
	l := Listener(ln, New(1), func(conn net.Conn, host string) { conn.Close(); refused <- host })
	dial := func() {
		d, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
	}
	accepted := make(chan net.Conn)
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- conn
		}
	}()

	dial()
	first := <-accepted
	dial()
	if host := <-refused; host != "127.0.0.1" {
		t.Fatalf("refused %q", host)
	}
	first.Close()
	first.Close() // must not free a second place
	dial()
	second := <-accepted
	dial()
	<-refused // still one place only
	second.Close()
	dial()
	<-accepted
}
