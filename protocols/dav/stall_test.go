package dav

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"kreide/protocols/dav/davauth"
	"kreide/store/storetest"
)

const stallUser, stallPass = "anna@example.org", "anna password"

func startStall(t *testing.T, d time.Duration) (addr string, auth string) {
	dir := storetest.Open(t)
	storetest.User(t, dir, stallUser, stallPass)
	s := New(Options{Dir: dir, AllowPlaintext: davauth.IsLoopback, StallTimeout: d})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(stallUser, stallPass)
	return ln.Addr().String(), req.Header.Get("Authorization")
}

// A client that stops sending its PUT body half way is dropped after the
// stall timeout, and nothing of the upload becomes visible.
func TestStalledUploadDropped(t *testing.T) {
	addr, auth := startStall(t, 300*time.Millisecond)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "PUT /files/half.txt HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Length: 100000\r\n\r\n%s", auth, strings.Repeat("x", 1000))
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, _ := io.ReadAll(c) // until the server closes
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("stalled upload held for %v", waited)
	}
	if strings.HasPrefix(string(resp), "HTTP/1.1 2") {
		t.Fatalf("stalled upload answered %q", resp)
	}
	code := get(t, addr, auth, "/files/half.txt")
	if code != http.StatusNotFound {
		t.Fatalf("half an upload is visible: GET %d", code)
	}
}

// A client that stops reading a large response is dropped after the stall
// timeout.
func TestStalledDownloadDropped(t *testing.T) {
	addr, auth := startStall(t, 300*time.Millisecond)
	size := 32 << 20
	req, _ := http.NewRequest("PUT", "http://"+addr+"/files/big.bin", strings.NewReader(strings.Repeat("b", size)))
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /files/big.bin HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n", auth)
	time.Sleep(2 * time.Second) // read nothing
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if n >= int64(size) {
		t.Fatalf("read %d bytes after stalling: the server kept writing", n)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server neither finished nor closed the stalled download (%d bytes, %v)", n, err)
	}
	t.Logf("server dropped the stalled download after %d of %d bytes (%v)", n, size, err)
}

// Deadlines set during one request do not cut off the next request on the
// same keep-alive connection.
func TestStallDeadlinesResetBetweenRequests(t *testing.T) {
	addr, auth := startStall(t, 300*time.Millisecond)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i, r := range []string{
		fmt.Sprintf("PUT /files/a.txt HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Length: 5\r\n\r\nhello", auth),
		fmt.Sprintf("GET /files/a.txt HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n", auth),
	} {
		if i > 0 {
			time.Sleep(time.Second) // longer than the stall timeout
		}
		io.WriteString(c, r)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d on a kept-alive connection: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 || (i == 1 && string(body) != "hello") {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
}

func get(t *testing.T, addr, auth, path string) int {
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
