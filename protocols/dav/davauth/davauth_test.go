package davauth

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"kreide/store/storetest"
)

func newServer(t *testing.T) *httptest.Server {
	d := storetest.Open(t)
	storetest.User(t, d, "anna@example.org", "anna password")
	h := Middleware(Options{Dir: d, AllowPlaintext: IsLoopback})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Account(r.Context()) == nil {
			t.Error("handler reached without an account")
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func status(t *testing.T, srv *httptest.Server, user, pass string) int {
	t.Helper()
	req, _ := http.NewRequest("PROPFIND", srv.URL+"/dav/", nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestMiddleware(t *testing.T) {
	srv := newServer(t)
	for _, tt := range []struct {
		user, pass string
		want       int
	}{
		{"", "", 401},
		{"anna@example.org", "wrong", 401},
		{"nobody@example.org", "anna password", 401},
		{"anna@example.org", "anna password", 204},
	} {
		if got := status(t, srv, tt.user, tt.pass); got != tt.want {
			t.Errorf("%q/%q: %d, want %d", tt.user, tt.pass, got, tt.want)
		}
	}
}

// TestFailedLoginsSlowedPerClient: one client trying many different login
// names is slowed down. Each name fails only once, so only the per-client
// count in store.Directory.Login can cause the delay: the middleware must
// pass the request's remote address to it.
func TestFailedLoginsSlowedPerClient(t *testing.T) {
	srv := newServer(t)
	for i := range 10 {
		if got := status(t, srv, fmt.Sprintf("guess%d@example.org", i), "wrong"); got != 401 {
			t.Fatalf("attempt %d: %d", i, got)
		}
	}
	start := time.Now()
	status(t, srv, "guess10@example.org", "wrong")
	d1 := time.Since(start)
	start = time.Now()
	status(t, srv, "guess11@example.org", "wrong")
	d2 := time.Since(start)
	t.Logf("11th and 12th failed logins from one client took %v and %v", d1, d2)
	if d1 < 200*time.Millisecond || d2 < 400*time.Millisecond {
		t.Fatalf("failed logins after 10 failures from one client answered in %v and %v, want >= 250ms and 500ms", d1, d2)
	}
	if got := status(t, srv, "anna@example.org", "anna password"); got != 204 {
		t.Fatalf("correct password after the failures: %d", got)
	}
}
