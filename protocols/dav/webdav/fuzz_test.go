package webdav

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func validSegments(t *testing.T, in string, segs []string) {
	t.Helper()
	for _, s := range segs {
		if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
			t.Fatalf("%q gives the segment %q", in, s)
		}
	}
}

// FuzzSegments: a request path maps to names under the prefix only: no
// empty, dot or dot-dot name, no slash or NUL inside a name, however it is
// encoded.
func FuzzSegments(f *testing.F) {
	for _, s := range []string{"/files/", "/files", "/files/a/b%20c/", "/files/%2e%2e/x", "/files/..%2f..%2fetc", "/files/a%2Fb",
		"/other/x", "/files//x", "/files/%", "/files/%00", "/files/%252e%252e/"} {
		f.Add(s)
	}
	h := NewHandler(Options{Prefix: "/files/"}).(*handler)
	f.Fuzz(func(t *testing.T, p string) {
		segs, err := h.segments(p)
		if err != nil {
			return
		}
		if !strings.HasPrefix(p+"/", "/files/") {
			t.Fatalf("%q is outside the prefix but gave %q", p, segs)
		}
		validSegments(t, p, segs)
	})
}

// FuzzDestination: a Destination header names a path under the prefix on
// this host, or gets 400 or 502.
func FuzzDestination(f *testing.F) {
	for _, s := range []string{"/files/b", "https://dav.example/files/a%20b", "http://evil.example/files/x", "/files/../x",
		"//evil.example/files/x", "https://dav.example:443/files/x", "/dav/calendars/x", "files/x", ":", "https://dav.example/files/%2e%2e/"} {
		f.Add(s)
	}
	h := NewHandler(Options{Prefix: "/files/"}).(*handler)
	f.Fuzz(func(t *testing.T, dst string) {
		r := httptest.NewRequest("MOVE", "https://dav.example/files/a", nil)
		r.Header.Set("Destination", dst)
		rq := &request{h: h, r: r}
		p, code := rq.destination()
		switch code {
		case 0:
			if p != "" { // "" is the root of the tree
				validSegments(t, dst, strings.Split(p, "/"))
			}
		case 400, 502:
		default:
			t.Fatalf("Destination %q: code %d", dst, code)
		}
	})
}

// FuzzParseTimeout: any Timeout header gives a lock timeout between one
// second and the maximum.
func FuzzParseTimeout(f *testing.F) {
	for _, s := range []string{"", "Infinite", "Second-600", "Second-0", "Second--5", "Second-99999999999999999999", "bogus, Second-30"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := parseTimeout(s)
		if d < time.Second || d > maxLockTimeout {
			t.Fatalf("parseTimeout(%q) = %v", s, d)
		}
	})
}
