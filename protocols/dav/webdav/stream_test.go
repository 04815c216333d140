package webdav

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// genReader produces size pseudo-random bytes: test data that is never stored.
type genReader struct {
	rng  *rand.ChaCha8
	left int64
}

func newGen(seed byte, size int64) *genReader {
	return &genReader{rng: rand.NewChaCha8([32]byte{seed}), left: size}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	g.rng.Read(p)
	g.left -= int64(len(p))
	return len(p), nil
}

// rssBytes is this process's resident set size (Linux), or 0.
func rssBytes() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:")); ok {
			kb, _ := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestStreaming2GiB uploads and downloads 2 GiB generated on the fly and
// compares SHA-256 sums. Server and client share this process; the RSS
// growth over the whole transfer must stay under 64 MiB (nothing buffers a
// whole file).
func TestStreaming2GiB(t *testing.T) {
	if testing.Short() {
		t.Skip("2 GiB transfer; skipped with -short")
	}
	const size = 2 << 30
	s := newServer(t)
	if err := s.d.SetQuota(ctx, testUser, 3<<30); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	debug.FreeOSMemory()
	base := rssBytes()
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if r := rssBytes(); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()

	up := sha256.New()
	start := time.Now()
	req, _ := http.NewRequest("PUT", s.files+"big.bin", io.TeeReader(newGen(42, size), up))
	req.ContentLength = size
	req.SetBasicAuth(testUser, testPass)
	resp, err := s.Client().Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("PUT: %v %v", resp, err)
	}
	resp.Body.Close()
	upTime := time.Since(start)

	start = time.Now()
	req, _ = http.NewRequest("GET", s.files+"big.bin", nil)
	req.SetBasicAuth(testUser, testPass)
	resp, err = s.Client().Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET: %v %v", resp, err)
	}
	down := sha256.New()
	n, err := io.CopyBuffer(down, resp.Body, make([]byte, 256<<10))
	resp.Body.Close()
	downTime := time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil || n != size {
		t.Fatalf("GET read %d bytes: %v", n, err)
	}
	if !bytes.Equal(up.Sum(nil), down.Sum(nil)) {
		t.Fatal("SHA-256 of the download differs from the upload")
	}
	growth := peak.Load() - base
	t.Logf("2 GiB: PUT %.0f MB/s, GET %.0f MB/s, RSS %d MiB before, peak growth %d MiB",
		size/upTime.Seconds()/1e6, size/downTime.Seconds()/1e6, base>>20, growth>>20)
	if base > 0 && growth > 64<<20 {
		t.Fatalf("RSS grew by %d MiB during the transfer (target: under 64 MiB)", growth>>20)
	}
}
