package dav

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"kreide/bench/benchkit"
)

const (
	filesUser     = "bench@example.org"
	filesPass     = "bench password 1"
	smallFileSize = 4 << 10
	filesClients  = 8
	bigRuns       = 3
)

// fileTarget is one server under the WebDAV workload.
type fileTarget struct {
	server string
	c      *client
	root   string // the user's folder, with a trailing slash
	pid    int
	tree   bool // the server is a process tree (Apache)
	note   string
}

// WebDAV PUTs and GETs a 1 GiB file (generated on the fly, streamed, and
// what comes back checked by SHA-256) on kreide and Apache mod_dav, three
// times, then fills a folder with 10,000 small files and lists it with
// PROPFIND Depth 1.
func WebDAV(ctx context.Context, o benchkit.Options) ([]benchkit.Result, error) {
	size := int64(1 << 30)
	nfiles := scaled(o, 10000)
	reps := 20
	if o.Quick {
		size, reps = 100<<20, 5
	}
	root, err := os.MkdirTemp("", "kreide-bench-webdav-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	os.Chmod(root, 0o755) // Apache's workers (www-data) live below it

	k, err := newKreide(ctx, filepath.Join(root, "kreide"))
	if err != nil {
		return nil, err
	}
	if err := k.addUser(ctx, filesUser, filesPass); err != nil {
		return nil, err
	}
	if _, err := k.start(ctx); err != nil {
		return nil, err
	}
	defer k.stop()
	targets := []*fileTarget{{server: "kreide", c: newClient(k.base(), filesUser, filesPass, filesClients),
		root: "/files/", pid: k.p.pid(), note: "encrypted at rest"}}

	a, err := startApache(ctx, filepath.Join(root, "apache"), map[string]string{filesUser: filesPass})
	switch {
	case errors.Is(err, errNotInstalled):
		targets[0].note += "; apache2 not installed"
		logf(o, "apache2 is not installed: kreide alone")
	case err != nil:
		// kreide's figures are still worth having.
		targets[0].note += "; apache2 failed to start (see log)"
		logf(o, "apache2 failed to start: %v", err)
	default:
		defer a.stop()
		targets = append(targets, &fileTarget{server: "apache", c: newClient(a.base(), filesUser, filesPass, filesClients),
			root: "/files/", pid: a.p.pid(), tree: true, note: "mod_dav_fs: plain files"})
	}
	defer func() {
		for _, t := range targets {
			t.c.close()
		}
	}()

	// One request first, so that kreide's Argon2 on the first login is not
	// part of any figure (see CalDAV).
	for _, t := range targets {
		if _, err := t.c.call(ctx, "PROPFIND", t.root, "", []int{207}, "Depth", "0"); err != nil {
			return nil, fmt.Errorf("%s: %w", t.server, err)
		}
	}
	var results []benchkit.Result
	// The big file goes up and down bigRuns times, kreide and the peer in
	// turn, so that both see the same moments of a shared machine.
	mib := size >> 20
	puts := map[*fileTarget][]benchkit.Result{}
	gets := map[*fileTarget][]benchkit.Result{}
	for run := range bigRuns {
		sums := map[*fileTarget][]byte{}
		for _, t := range targets {
			logf(o, "%s: PUT of a %d MiB file (run %d of %d)", t.server, mib, run+1, bigRuns)
			res, sum, err := putBig(ctx, t, size)
			if err != nil {
				return results, fmt.Errorf("%s: %w", t.server, err)
			}
			sums[t] = sum
			puts[t] = append(puts[t], res)
		}
		for _, t := range targets {
			logf(o, "%s: GET of the %d MiB file (run %d of %d)", t.server, mib, run+1, bigRuns)
			res, err := getBig(ctx, t, size, sums[t])
			if err != nil {
				return results, fmt.Errorf("%s: %w", t.server, err)
			}
			gets[t] = append(gets[t], res)
		}
	}
	for _, t := range targets {
		res := combineRuns(puts[t])
		res.Workload = fmt.Sprintf("WebDAV PUT %d MiB file (%d runs)", mib, bigRuns)
		results = append(results, res)
	}
	for _, t := range targets {
		res := combineRuns(gets[t])
		res.Workload = fmt.Sprintf("WebDAV GET %d MiB file (%d runs)", mib, bigRuns)
		results = append(results, res)
	}
	for _, t := range targets {
		logf(o, "%s: PUT of %d files of 4 KiB", t.server, nfiles)
		res, err := putMany(ctx, t, nfiles)
		if err != nil {
			return results, fmt.Errorf("%s: %w", t.server, err)
		}
		res.Workload = fmt.Sprintf("WebDAV PUT %s files of 4 KiB (%d clients)", thousands(nfiles), filesClients)
		results = append(results, res)
	}
	for _, t := range targets {
		logf(o, "%s: PROPFIND Depth 1 of the folder of %d files, %d times", t.server, nfiles, reps)
		res, err := propfindMany(ctx, t, nfiles, reps)
		if err != nil {
			return results, fmt.Errorf("%s: %w", t.server, err)
		}
		res.Workload = fmt.Sprintf("WebDAV PROPFIND Depth 1, %s files", thousands(nfiles))
		results = append(results, res)
	}
	return results, nil
}

// genReader yields size bytes of deterministic, incompressible data and
// hashes them (SHA-256) as they are read. The bytes come from a 16 MiB
// pseudo-random pool, 64 KiB at a time from a varying offset and stamped
// with the block number, so that making them costs a copy: the client
// shares the two cores with the server, and generating ChaCha8 output on
// the fly cost it more CPU than the server's own work.
type genReader struct {
	left  int64
	block uint64
	blk   []byte // the current block
	buf   []byte // its rest
	h     hash.Hash
}

const (
	genBlock = 64 << 10
	genPool  = 16 << 20
)

var genPoolOnce = sync.OnceValue(func() []byte {
	b := make([]byte, genPool)
	rand.NewChaCha8([32]byte{'k', 'r', 'e', 'i', 'd', 'e'}).Read(b)
	return b
})

func newGenReader(size int64) *genReader {
	return &genReader{left: size, h: sha256.New()}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	n := 0
	for n < len(p) {
		if len(g.buf) == 0 {
			pool := genPoolOnce()
			off := (g.block * 40503 * 4096) % (genPool - genBlock)
			if g.blk == nil {
				g.blk = make([]byte, genBlock)
			}
			copy(g.blk, pool[off:off+genBlock])
			binary.LittleEndian.PutUint64(g.blk, g.block)
			g.block++
			g.buf = g.blk
		}
		c := copy(p[n:], g.buf)
		g.buf = g.buf[c:]
		n += c
	}
	g.h.Write(p)
	g.left -= int64(n)
	return n, nil
}

// rssNote is the target's note, with the peak PSS of a process tree (its
// summed RSS counts the pages the processes share once per process).
func rssNote(t *fileTarget, w *rssWatch) string {
	if !t.tree || w.pss == 0 {
		return t.note
	}
	return fmt.Sprintf("PSS %.0f MiB; %s", mib(w.pss), t.note)
}

// combineRuns makes one result of several runs of one transfer: the
// throughput over all of them, the median run time as p50 and the slowest
// as p99.
func combineRuns(runs []benchkit.Result) benchkit.Result {
	out := runs[len(runs)-1]
	out.Ops, out.Elapsed, out.PeakRSS = 0, 0, 0
	var lat benchkit.Latencies
	for _, r := range runs {
		out.Ops += r.Ops
		out.Elapsed += r.Elapsed
		out.PeakRSS = max(out.PeakRSS, r.PeakRSS)
		lat.Add(r.Elapsed)
	}
	out.P50, out.P99 = lat.Percentile(50), lat.Percentile(100)
	out.Note = "p50/p99: median/slowest run; " + out.Note
	return out
}

// putNote says how durable a server's 201 is.
func putNote(t *fileTarget) string {
	if t.server == "kreide" {
		return ", fsync before 201"
	}
	return ", no fsync"
}

// putBig streams one big file up and returns its SHA-256.
func putBig(ctx context.Context, t *fileTarget, size int64) (benchkit.Result, []byte, error) {
	g := newGenReader(size)
	rss := watch(t.pid, t.tree)
	start := time.Now()
	resp, err := t.c.do(ctx, "PUT", t.root+"big.bin", io.NopCloser(g), size, "Content-Type", "application/octet-stream")
	if err != nil {
		rss.Stop()
		return benchkit.Result{}, nil, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	elapsed := time.Since(start)
	peak := rss.Stop()
	if resp.StatusCode != 201 && resp.StatusCode != 204 {
		return benchkit.Result{}, nil, fmt.Errorf("PUT big.bin: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	if g.left != 0 {
		return benchkit.Result{}, nil, fmt.Errorf("PUT big.bin: %d bytes not sent", g.left)
	}
	return benchkit.Result{Server: t.server, Unit: "MB", Ops: float64(size) / 1e6, Elapsed: elapsed,
		PeakRSS: peak, Note: rssNote(t, rss) + putNote(t)}, g.h.Sum(nil), nil
}

// getBig streams the big file down and checks its size and SHA-256.
func getBig(ctx context.Context, t *fileTarget, size int64, sum []byte) (benchkit.Result, error) {
	rss := watch(t.pid, t.tree)
	start := time.Now()
	resp, err := t.c.do(ctx, "GET", t.root+"big.bin", nil, 0)
	if err != nil {
		rss.Stop()
		return benchkit.Result{}, err
	}
	h := sha256.New()
	buf := make([]byte, 256<<10)
	n, err := io.CopyBuffer(h, resp.Body, buf)
	resp.Body.Close()
	elapsed := time.Since(start)
	peak := rss.Stop()
	if resp.StatusCode != 200 {
		return benchkit.Result{}, fmt.Errorf("GET big.bin: %s", resp.Status)
	}
	if err != nil {
		return benchkit.Result{}, fmt.Errorf("GET big.bin: %w", err)
	}
	if n != size || !bytes.Equal(h.Sum(nil), sum) {
		return benchkit.Result{}, fmt.Errorf("GET big.bin: got %d bytes with another SHA-256 than the %d PUT", n, size)
	}
	return benchkit.Result{Server: t.server, Unit: "MB", Ops: float64(size) / 1e6, Elapsed: elapsed,
		PeakRSS: peak, Note: rssNote(t, rss) + "; SHA-256 checked"}, nil
}

func smallName(i int) string { return fmt.Sprintf("Arbeitsblatt %05d.txt", i) }

// putMany PUTs nfiles small files into the folder many/ from filesClients
// clients.
func putMany(ctx context.Context, t *fileTarget, nfiles int) (benchkit.Result, error) {
	if _, err := t.c.call(ctx, "MKCOL", t.root+"many/", "", []int{201}); err != nil {
		return benchkit.Result{}, err
	}
	var lat benchkit.Latencies
	jobs := make(chan int)
	var firstErr error
	var errOnce sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rss := watch(t.pid, t.tree)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range filesClients {
		rng := rand.NewChaCha8([32]byte{byte(w)})
		wg.Go(func() {
			body := make([]byte, smallFileSize)
			for i := range jobs {
				rng.Read(body)
				err := lat.Time(func() error {
					resp, err := t.c.do(ctx, "PUT", t.root+"many/"+strings.ReplaceAll(smallName(i), " ", "%20"),
						bytes.NewReader(body), int64(len(body)), "Content-Type", "text/plain")
					if err != nil {
						return err
					}
					drain(resp.Body)
					if resp.StatusCode != 201 && resp.StatusCode != 204 {
						return fmt.Errorf("PUT %s: %s", smallName(i), resp.Status)
					}
					return nil
				})
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
				}
			}
		})
	}
feed:
	for i := range nfiles {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	peak := rss.Stop()
	if firstErr != nil {
		return benchkit.Result{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return benchkit.Result{}, err
	}
	return benchkit.Result{Server: t.server, Unit: "files", Ops: float64(nfiles), Elapsed: elapsed,
		P50: lat.Percentile(50), P99: lat.Percentile(99), PeakRSS: peak, Note: rssNote(t, rss) + putNote(t)}, nil
}

// propfindBody asks for what a file manager shows.
const propfindBody = `<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>` +
	`<D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/><D:getcontenttype/><D:displayname/>` +
	`</D:prop></D:propfind>`

// propfindMany lists the folder many/ reps times, one request at a time.
// A PROPFIND is timed from the request until the last byte of the answer
// has arrived. The client's XML parse of the answer comes after the clock
// stops: with encoding/xml it takes longer than either server takes to
// answer (over 250 ms for kreide's 4.2 MB on the 2-core machine), so
// timing it would measure the client. Its mean is in the note.
func propfindMany(ctx context.Context, t *fileTarget, nfiles, reps int) (benchkit.Result, error) {
	var lat benchkit.Latencies
	var size int
	var parsing time.Duration
	rss := watch(t.pid, t.tree)
	start := time.Now()
	for range reps {
		var b []byte
		err := lat.Time(func() (err error) {
			b, err = t.c.call(ctx, "PROPFIND", t.root+"many/", propfindBody, []int{207}, "Depth", "1", "Content-Type", "application/xml; charset=utf-8")
			return err
		})
		if err != nil {
			rss.Stop()
			return benchkit.Result{}, err
		}
		size = len(b)
		parseStart := time.Now()
		ms, err := parseMultistatus(b)
		parsing += time.Since(parseStart)
		if err != nil {
			rss.Stop()
			return benchkit.Result{}, err
		}
		if len(ms.hrefs) != nfiles+1 {
			rss.Stop()
			return benchkit.Result{}, fmt.Errorf("PROPFIND many/: %d responses, want %d", len(ms.hrefs), nfiles+1)
		}
	}
	elapsed := time.Since(start) - parsing
	peak := rss.Stop()
	return benchkit.Result{Server: t.server, Unit: "PROPFINDs", Ops: float64(reps), Elapsed: elapsed,
		P50: lat.Percentile(50), P99: lat.Percentile(99), PeakRSS: peak,
		Note: fmt.Sprintf("%.1f MB answer, client's parse (%v on average) not timed; %s", float64(size)/1e6,
			(parsing / time.Duration(reps)).Round(time.Millisecond), rssNote(t, rss))}, nil
}
