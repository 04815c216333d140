package webdav

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"kreide/protocols/dav/davauth"
	"kreide/store"
	"kreide/store/storetest"
)

var ctx = context.Background()

const (
	testUser = "anna@example.org"
	testPass = "password1"
)

// testServer is the WebDAV handler behind davauth on a loopback httptest
// server, mounted at /files/ as the lead's router does.
type testServer struct {
	*httptest.Server
	d     *store.Directory
	files string // URL of /files/
}

func newHandlerFor(d *store.Directory, max int64) http.Handler {
	mux := http.NewServeMux()
	h := NewHandler(Options{Prefix: "/files/", MaxUploadSize: max, Logger: slog.New(slog.DiscardHandler)})
	mux.Handle("/files/", davauth.Middleware(davauth.Options{Dir: d, AllowPlaintext: davauth.IsLoopback})(h))
	mux.Handle("/files", davauth.Middleware(davauth.Options{Dir: d, AllowPlaintext: davauth.IsLoopback})(h))
	return mux
}

func newServer(t testing.TB) *testServer {
	t.Helper()
	d := storetest.Open(t)
	if _, err := d.CreateAccount(ctx, testUser, testPass); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newHandlerFor(d, 0))
	t.Cleanup(srv.Close)
	return &testServer{Server: srv, d: d, files: srv.URL + "/files/"}
}

// do sends a request as the test user and returns the response with its body read.
func (s *testServer) do(t testing.TB, method, path string, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(testUser, testPass)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// expect sends a request and checks its status.
func (s *testServer) expect(t testing.TB, want int, method, path, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	resp, b := s.do(t, method, path, body, hdr...)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d\n%s", method, path, resp.StatusCode, want, b)
	}
	return resp, b
}

// account logs the test user in, for checks behind the protocol.
func (s *testServer) account(t testing.TB) *store.Account {
	t.Helper()
	a, err := s.d.Login(ctx, testUser, testPass, store.ScopeDAV)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}
