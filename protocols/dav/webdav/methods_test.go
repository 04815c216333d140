package webdav

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"kreide/protocols/dav/davauth"
	"kreide/store/storetest"
)

func TestOptionsAndAuth(t *testing.T) {
	s := newServer(t)
	resp, _ := s.expect(t, 200, "OPTIONS", "/files/", "")
	for h, want := range map[string]string{"DAV": "1, 2", "MS-Author-Via": "DAV"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s: %q", h, got)
		}
	}
	if !strings.Contains(resp.Header.Get("Allow"), "LOCK") {
		t.Errorf("Allow: %q", resp.Header.Get("Allow"))
	}
	s.expect(t, 200, "OPTIONS", "/files", "")
	s.expect(t, 200, "OPTIONS", "/files/not/there", "")

	req, _ := http.NewRequest("PROPFIND", s.files, nil)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no credentials: %d", resp.StatusCode)
	}
	s.expect(t, 405, "PATCH", "/files/", "")

	// Without davauth the handler refuses to serve anything.
	rec := httptest.NewRecorder()
	NewHandler(Options{Prefix: "/files/", Logger: slog.New(slog.DiscardHandler)}).ServeHTTP(rec, httptest.NewRequest("GET", "/files/", nil))
	if rec.Code != 500 {
		t.Fatalf("unauthenticated handler: %d", rec.Code)
	}
}

func TestPutGet(t *testing.T) {
	s := newServer(t)
	body := strings.Repeat("Hausaufgaben bis Freitag. ", 5000) // 130 KB: a blob file
	resp, _ := s.expect(t, 201, "PUT", "/files/aufgaben.txt", body, "Content-Type", "text/plain; charset=utf-8")
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on PUT")
	}
	resp, got := s.expect(t, 200, "GET", "/files/aufgaben.txt", "")
	if got != body || resp.Header.Get("ETag") != etag || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("GET: %d bytes, ETag %q, type %q", len(got), resp.Header.Get("ETag"), resp.Header.Get("Content-Type"))
	}
	lm := resp.Header.Get("Last-Modified")
	resp, got = s.expect(t, 200, "HEAD", "/files/aufgaben.txt", "")
	if got != "" || resp.ContentLength != int64(len(body)) {
		t.Fatalf("HEAD: %q %d", got, resp.ContentLength)
	}
	s.expect(t, 304, "GET", "/files/aufgaben.txt", "", "If-None-Match", etag)
	s.expect(t, 304, "GET", "/files/aufgaben.txt", "", "If-Modified-Since", lm)
	s.expect(t, 412, "GET", "/files/aufgaben.txt", "", "If-Match", `"other"`)

	// Ranges, decrypted chunk by chunk.
	resp, got = s.expect(t, 206, "GET", "/files/aufgaben.txt", "", "Range", "bytes=65530-65545")
	if got != body[65530:65546] || resp.Header.Get("Content-Range") != "bytes 65530-65545/130000" {
		t.Fatalf("range: %q %q", got, resp.Header.Get("Content-Range"))
	}
	_, got = s.expect(t, 206, "GET", "/files/aufgaben.txt", "", "Range", "bytes=-5")
	if got != body[len(body)-5:] {
		t.Fatalf("suffix range: %q", got)
	}
	s.expect(t, 416, "GET", "/files/aufgaben.txt", "", "Range", "bytes=200000-")
	s.expect(t, 200, "GET", "/files/aufgaben.txt", "", "Range", "bytes=0-1", "If-Range", `"old"`)

	// Replace: 204, new ETag; the name decides the type when the client does not say.
	resp, _ = s.expect(t, 204, "PUT", "/files/aufgaben.txt", "neu")
	if resp.Header.Get("ETag") == etag {
		t.Fatal("ETag unchanged")
	}
	s.expect(t, 201, "PUT", "/files/bild.png", "\x89PNG", "Content-Type", "application/octet-stream")
	resp, _ = s.expect(t, 200, "GET", "/files/bild.png", "")
	if resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("guessed type %q", resp.Header.Get("Content-Type"))
	}
	s.expect(t, 201, "PUT", "/files/leer", "")
	if _, got := s.expect(t, 200, "GET", "/files/leer", ""); got != "" {
		t.Fatal("empty file not empty")
	}

	// Conditional PUTs.
	s.expect(t, 412, "PUT", "/files/aufgaben.txt", "x", "If-None-Match", "*")
	s.expect(t, 412, "PUT", "/files/aufgaben.txt", "x", "If-Match", `"nope"`)
	s.expect(t, 412, "PUT", "/files/neu.txt", "x", "If-Match", "*")
	resp, _ = s.expect(t, 201, "PUT", "/files/neu.txt", "x", "If-None-Match", "*")
	s.expect(t, 204, "PUT", "/files/neu.txt", "y", "If-Match", resp.Header.Get("ETag"))

	// Errors.
	s.expect(t, 409, "PUT", "/files/fehlt/x.txt", "x")
	s.expect(t, 201, "MKCOL", "/files/ordner", "")
	s.expect(t, 405, "PUT", "/files/ordner", "x")
	s.expect(t, 405, "PUT", "/files/", "x")
	s.expect(t, 409, "PUT", "/files/neu.txt/unter.txt", "x")
	s.expect(t, 400, "PUT", "/files/teil.txt", "x", "Content-Range", "bytes 0-0/10")
	s.expect(t, 404, "GET", "/files/nichts", "")

	// A folder is an HTML index for browsers.
	resp, got = s.expect(t, 200, "GET", "/files/", "")
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(got, `href="/files/ordner/"`) {
		t.Fatalf("index: %s", got)
	}
}

func TestPutChunkedAndLimits(t *testing.T) {
	s := newServer(t)
	// Chunked (no Content-Length), as Finder and davfs2 send.
	body := bytes.Repeat([]byte("chunk "), 100_000)
	req, _ := http.NewRequest("PUT", s.files+"chunked.bin", io.MultiReader(bytes.NewReader(body)))
	req.SetBasicAuth(testUser, testPass)
	req.ContentLength = -1
	resp, err := s.Client().Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("chunked PUT: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, got := s.expect(t, 200, "GET", "/files/chunked.bin", ""); got != string(body) {
		t.Fatal("chunked content differs")
	}

	// Quota: announced sizes fail before the body is read, streamed ones
	// when they cross it; the old content stays.
	if err := s.d.SetQuota(ctx, testUser, 700_000); err != nil {
		t.Fatal(err)
	}
	s.expect(t, 507, "PUT", "/files/gross.bin", strings.Repeat("x", 200_000))
	req, _ = http.NewRequest("PUT", s.files+"chunked.bin", io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("y"), 800_000))))
	req.SetBasicAuth(testUser, testPass)
	req.ContentLength = -1
	resp, err = s.Client().Do(req)
	if err != nil || resp.StatusCode != 507 {
		t.Fatalf("chunked PUT over quota: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, got := s.expect(t, 200, "GET", "/files/chunked.bin", ""); got != string(body) {
		t.Fatal("over-quota upload changed the file")
	}
	s.expect(t, 507, "COPY", "/files/chunked.bin", "", "Destination", "/files/kopie.bin")
	resp, got := s.expect(t, 207, "PROPFIND", "/files/", `<propfind xmlns="DAV:"><prop><quota-available-bytes/><quota-used-bytes/></prop></propfind>`, "Depth", "0")
	props := parseMultistatus(t, got)["/files/"]
	if props["{DAV:}quota-used-bytes"].Value != "600000" || props["{DAV:}quota-available-bytes"].Value != "100000" {
		t.Fatalf("quota props: %+v (%d)", props, resp.StatusCode)
	}

	// MaxUploadSize: 413, sized or streamed.
	d := storetest.Open(t)
	d.CreateAccount(ctx, testUser, testPass)
	small := httptest.NewServer(newHandlerFor(d, 1000))
	defer small.Close()
	s2 := &testServer{Server: small, d: d, files: small.URL + "/files/"}
	s2.expect(t, 413, "PUT", "/files/a", strings.Repeat("x", 1001))
	s2.expect(t, 201, "PUT", "/files/a", strings.Repeat("x", 1000))
	req, _ = http.NewRequest("PUT", s2.files+"a", io.MultiReader(strings.NewReader(strings.Repeat("z", 5000))))
	req.SetBasicAuth(testUser, testPass)
	req.ContentLength = -1
	resp, err = s2.Client().Do(req)
	if err != nil || resp.StatusCode != 413 {
		t.Fatalf("chunked PUT over the limit: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, got := s2.expect(t, 200, "GET", "/files/a", ""); got != strings.Repeat("x", 1000) {
		t.Fatal("refused upload changed the file")
	}
}

func TestMkcolDelete(t *testing.T) {
	s := newServer(t)
	s.expect(t, 201, "MKCOL", "/files/a", "")
	s.expect(t, 405, "MKCOL", "/files/a/", "")
	s.expect(t, 405, "MKCOL", "/files/", "")
	s.expect(t, 409, "MKCOL", "/files/x/y/", "")
	s.expect(t, 415, "MKCOL", "/files/b", "<mkcol/>", "Content-Type", "application/xml")
	s.expect(t, 201, "MKCOL", "/files/a/b", "")
	s.expect(t, 201, "PUT", "/files/a/b/c.txt", "c")
	s.expect(t, 409, "MKCOL", "/files/a/b/c.txt/d", "")
	s.expect(t, 400, "DELETE", "/files/a", "", "Depth", "0")
	s.expect(t, 204, "DELETE", "/files/a", "")
	s.expect(t, 404, "DELETE", "/files/a", "")
	s.expect(t, 404, "GET", "/files/a/b/c.txt", "")
	s.expect(t, 403, "DELETE", "/files/", "")
	s.expect(t, 201, "PUT", "/files/f", "f")
	s.expect(t, 412, "DELETE", "/files/f", "", "If-Match", `"nope"`)
	s.expect(t, 204, "DELETE", "/files/f", "", "Depth", "0")
	// A fragment is part of the name, never cut off to delete the folder.
	s.expect(t, 201, "MKCOL", "/files/frag/", "")
	s.expect(t, 404, "DELETE", "/files/frag/%23ment", "")
	s.expect(t, 207, "PROPFIND", "/files/frag/", "", "Depth", "0")
}

func TestCopyMove(t *testing.T) {
	s := newServer(t)
	s.expect(t, 201, "MKCOL", "/files/src", "")
	s.expect(t, 201, "PUT", "/files/src/a.txt", "A")
	s.expect(t, 201, "MKCOL", "/files/src/sub", "")
	s.expect(t, 201, "PUT", "/files/src/sub/b.txt", "B")

	s.expect(t, 201, "COPY", "/files/src", "", "Destination", s.files+"dst")
	_, got := s.expect(t, 200, "GET", "/files/dst/sub/b.txt", "")
	if got != "B" {
		t.Fatal("deep copy")
	}
	s.expect(t, 412, "COPY", "/files/src", "", "Destination", "/files/dst", "Overwrite", "F")
	s.expect(t, 204, "COPY", "/files/src/a.txt", "", "Destination", "/files/dst", "Overwrite", "T")
	s.expect(t, 201, "COPY", "/files/src", "", "Destination", "/files/flat", "Depth", "0")
	s.expect(t, 404, "GET", "/files/flat/a.txt", "")
	s.expect(t, 400, "COPY", "/files/src", "", "Destination", "/files/x", "Depth", "1")
	s.expect(t, 409, "COPY", "/files/src", "", "Destination", "/files/none/x")
	s.expect(t, 403, "COPY", "/files/src", "", "Destination", "/files/src/sub/inner")
	s.expect(t, 403, "COPY", "/files/src", "", "Destination", "/files/src")
	s.expect(t, 502, "COPY", "/files/src", "", "Destination", "http://elsewhere.example/files/x")
	s.expect(t, 502, "COPY", "/files/src", "", "Destination", "/other/x")
	s.expect(t, 400, "COPY", "/files/src", "")
	s.expect(t, 400, "COPY", "/files/src", "", "Destination", "/files/%2e%2e/x")
	s.expect(t, 404, "COPY", "/files/none", "", "Destination", "/files/x")

	s.expect(t, 201, "MOVE", "/files/src", "", "Destination", "/files/moved")
	s.expect(t, 404, "GET", "/files/src/a.txt", "")
	s.expect(t, 412, "MOVE", "/files/moved", "", "Destination", "/files/flat", "Overwrite", "F")
	s.expect(t, 204, "MOVE", "/files/moved", "", "Destination", "/files/flat")
	_, got = s.expect(t, 200, "GET", "/files/flat/sub/b.txt", "")
	if got != "B" {
		t.Fatal("moved content")
	}
	s.expect(t, 400, "MOVE", "/files/flat", "", "Destination", "/files/x", "Depth", "0")
	s.expect(t, 403, "MOVE", "/files/", "", "Destination", "/files/x")
	s.expect(t, 201, "MOVE", "/files/flat/sub/b.txt", "", "Destination", "/files/Ünïcödé%20b.txt")
	if _, got := s.expect(t, 200, "GET", "/files/%C3%9Cn%C3%AFc%C3%B6d%C3%A9%20b.txt", ""); got != "B" {
		t.Fatal("unicode name")
	}
}

func TestPathAttacks(t *testing.T) {
	s := newServer(t)
	s.expect(t, 201, "PUT", "/files/ok.txt", "ok")
	for _, p := range []string{
		"/files/%2e%2e/x", "/files/a%2fb", "/files/a%2Fb", "/files/%00", "/files/a%0ab", "/files/%2E",
		"/files/%252e%252e", "/files/" + strings.Repeat("n", 256), "/files/bad%ff",
		"/files/" + strings.Repeat("d/", 65),
	} {
		for _, m := range []string{"PUT", "MKCOL", "GET", "PROPFIND"} {
			resp, _ := s.do(t, m, p, "", "Depth", "0")
			if resp.StatusCode != 400 {
				t.Errorf("%s %s: %d", m, p, resp.StatusCode)
			}
		}
	}
	// http.ServeMux redirects to the clean path; the handler itself, under
	// any router, refuses dot segments, and serves nothing outside the prefix.
	a := s.account(t)
	for p, want := range map[string]int{"/files/../files/ok.txt": 400, "/files/./ok.txt": 400, "/elsewhere/ok.txt": 404, "/files/ok.txt": 200} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", p, nil)
		NewHandler(Options{Prefix: "/files/"}).ServeHTTP(rec, req.WithContext(davauth.WithAccount(req.Context(), a)))
		if rec.Code != want {
			t.Errorf("GET %s: %d, want %d", p, rec.Code, want)
		}
	}
	if got, _ := a.Files().ReadDir(ctx, ""); len(got) != 1 {
		t.Fatalf("tree: %+v", got)
	}
}

func TestETagChanges(t *testing.T) {
	s := newServer(t)
	resp, _ := s.expect(t, 201, "PUT", "/files/t.txt", "1")
	e1 := resp.Header.Get("ETag")
	resp, _ = s.expect(t, 204, "PUT", "/files/t.txt", "2")
	if resp.Header.Get("ETag") == e1 {
		t.Fatal("ETag did not change")
	}
	s.expect(t, 200, "GET", "/files/t.txt", "", "If-None-Match", e1)
}

func TestSameHost(t *testing.T) {
	for _, c := range []struct {
		dest, host string
		want       bool
	}{
		{"/files/x", "a.example", true},
		{"http://a.example/files/x", "a.example", true},
		{"http://A.example:80/files/x", "a.example", true},
		{"https://a.example:443/files/x", "a.example", true},
		{"https://a.example/files/x", "a.example:443", true},
		{"http://a.example:8080/files/x", "a.example:8080", true},
		{"http://a.example:8080/files/x", "a.example", false},
		{"http://b.example/files/x", "a.example", false},
		{"http://[::1]:80/files/x", "[::1]", true},
	} {
		u, err := url.Parse(c.dest)
		if err != nil {
			t.Fatal(err)
		}
		if got := sameHost(u, c.host); got != c.want {
			t.Errorf("%s on %s: %v", c.dest, c.host, got)
		}
	}
}
