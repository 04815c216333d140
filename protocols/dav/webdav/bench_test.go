package webdav

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"kreide/protocols/dav/davauth"
	"kreide/store"
	"kreide/store/storetest"
)

// The WebDAV workloads of bench/dav (README "Calendars, files and scale"),
// without TLS, Apache or a child process, so that a change can be measured
// in a minute:
//
//	go test ./protocols/dav/webdav -run '^$' -bench 'Propfind10k|Put4k' -benchtime 20x
//
// ms/op is the wall time of one PROPFIND, cpu-ms/op the process CPU time
// per operation.

const (
	benchFiles    = 10000
	benchFileSize = 4 << 10
)

// benchPropfindBody asks for what a file manager shows (bench/dav).
const benchPropfindBody = `<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>` +
	`<D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/><D:getcontenttype/><D:displayname/>` +
	`</D:prop></D:propfind>`

// benchFolder is an account with the folder many/ of benchFiles files of 4
// KiB, written through the store from 8 goroutines as bench/dav's clients do.
func benchFolder(b *testing.B) (*store.Account, http.Handler) {
	b.Helper()
	d := storetest.Open(b)
	a, _ := storetest.User(b, d, testUser, testPass)
	fs := a.Files()
	if _, err := fs.Mkdir(ctx, "many", nil); err != nil {
		b.Fatal(err)
	}
	body := bytes.Repeat([]byte("x"), benchFileSize)
	jobs := make(chan int)
	var failed atomic.Value
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range jobs {
				w, err := fs.Create(ctx, fmt.Sprintf("many/Arbeitsblatt %05d.txt", i), store.FileCreateOptions{ContentType: "text/plain"})
				if err == nil {
					if _, err = w.Write(body); err == nil {
						_, _, err = w.Commit(ctx)
					}
				}
				if err != nil {
					failed.Store(err)
				}
			}
		})
	}
	for i := range benchFiles {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return a, NewHandler(Options{Prefix: "/files/"})
}

// bufWriter is a ResponseWriter that keeps the body (a buffer reused from
// one PROPFIND to the next).
type bufWriter struct {
	hdr  http.Header
	code int
	body bytes.Buffer
}

func (w *bufWriter) Header() http.Header         { return w.hdr }
func (w *bufWriter) WriteHeader(code int)        { w.code = code }
func (w *bufWriter) Write(p []byte) (int, error) { return w.body.Write(p) }

// BenchmarkPropfind10k: PROPFIND Depth 1 of a folder of 10,000 files, the
// handler called directly (the server's work alone), and over loopback
// HTTP/1.1 (plus net/http and reading the answer).
func BenchmarkPropfind10k(b *testing.B) {
	a, h := benchFolder(b)
	for _, tc := range []struct{ name, body string }{
		{"filemanager", benchPropfindBody},
		{"allprop", ""},
	} {
		b.Run("handler/"+tc.name, func(b *testing.B) {
			w := &bufWriter{}
			measure(b, func() {
				req := httptest.NewRequest("PROPFIND", "/files/many/", strings.NewReader(tc.body))
				req.Header.Set("Depth", "1")
				req = req.WithContext(davauth.WithAccount(req.Context(), a))
				w.hdr, w.code = http.Header{}, 0
				w.body.Reset()
				h.ServeHTTP(w, req)
			})
			if n := bytes.Count(w.body.Bytes(), []byte("<D:response>")); w.code != http.StatusMultiStatus || n != benchFiles+1 {
				b.Fatalf("PROPFIND: status %d, %d responses", w.code, n)
			}
			b.ReportMetric(float64(w.body.Len())/1e6, "MB/answer")
		})
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(davauth.WithAccount(r.Context(), a)))
	}))
	defer srv.Close()
	b.Run("http/filemanager", func(b *testing.B) {
		measure(b, func() {
			req, _ := http.NewRequest("PROPFIND", srv.URL+"/files/many/", strings.NewReader(benchPropfindBody))
			req.Header.Set("Depth", "1")
			req.Header.Set("Content-Type", "application/xml; charset=utf-8")
			resp, err := srv.Client().Do(req)
			if err != nil {
				b.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusMultiStatus || bytes.Count(body, []byte("<D:response>")) != benchFiles+1 {
				b.Fatalf("PROPFIND: %s, %v", resp.Status, err)
			}
		})
	})
}

// BenchmarkPut4k: files of 4 KiB PUT into one folder by 8 clients at once
// over loopback HTTP/1.1; each PUT is durable (fsync) before its 201.
// files/s is the rate of all eight together.
func BenchmarkPut4k(b *testing.B) {
	d := storetest.Open(b)
	a, _ := storetest.User(b, d, testUser, testPass)
	if _, err := a.Files().Mkdir(ctx, "many", nil); err != nil {
		b.Fatal(err)
	}
	h := NewHandler(Options{Prefix: "/files/"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(davauth.WithAccount(r.Context(), a)))
	}))
	defer srv.Close()
	srv.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 8
	body := bytes.Repeat([]byte("x"), benchFileSize)
	var next atomic.Int64
	before := cpuTime()
	start := time.Now()
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/files/many/Arbeitsblatt%%20%05d.txt", srv.URL, i), bytes.NewReader(body))
			req.Header.Set("Content-Type", "text/plain")
			resp, err := srv.Client().Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				b.Errorf("PUT: %s", resp.Status)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "files/s")
	b.ReportMetric(float64(cpuTime()-before)/float64(b.N)/1e6, "cpu-ms/op")
}

// measure runs fn in the benchmark loop and reports the wall time and the
// process CPU time per operation.
func measure(b *testing.B, fn func()) {
	before := cpuTime()
	for b.Loop() {
		fn()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/op")
	b.ReportMetric(float64(cpuTime()-before)/float64(b.N)/1e6, "cpu-ms/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
