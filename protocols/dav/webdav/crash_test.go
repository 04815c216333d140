package webdav

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"kreide/store"
	"kreide/store/storetest"
)

// crashVersion is version n of the file the crash test overwrites: mostly
// blob files of a few MB, sometimes small enough to be inline.
func crashVersion(n int) []byte {
	size := 1<<20 + n*300_007%(6<<20)
	if n%5 == 3 {
		size = 3000
	}
	b := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(n), 'v'}).Read(b)
	copy(b, fmt.Sprintf("version %d|", n))
	return b
}

// TestCrashServeChild is the server process of TestCrashDuringUpload.
func TestCrashServeChild(t *testing.T) {
	dir := os.Getenv("KREIDE_WEBDAV_CRASH_DIR")
	if dir == "" {
		t.Skip("child process of TestCrashDuringUpload only")
	}
	d, err := store.Open(dir, storetest.Options())
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Printf("listen %s\n", ln.Addr())
	http.Serve(ln, newHandlerFor(d, 0))
}

// TestCrashDuringUpload kills the serving process (SIGKILL) while a PUT
// replaces a file, at random moments: mid-body, or after the whole body was
// sent while the server commits. After a restart the file is always one
// whole version: the last acknowledged one, or the one in flight if the
// kill came after its commit. The bbolt files pass their check.
func TestCrashDuringUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test starts child processes")
	}
	dir := t.TempDir()
	d, err := store.Open(dir, storetest.Options())
	if err != nil {
		t.Fatal(err)
	}
	d.AddDomain(ctx, "example.org")
	if _, err := d.CreateAccount(ctx, testUser, testPass); err != nil {
		t.Fatal(err)
	}
	d.Close()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	acked := -1
	midBody, afterBody, inflightWon := 0, 0, 0
	for round := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashServeChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "KREIDE_WEBDAV_CRASH_DIR="+dir)
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		var addr string
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listen "); ok {
				addr = a
				break
			}
		}
		if addr == "" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("child did not start")
		}
		go io.Copy(io.Discard, stdout)
		url := "http://" + addr + "/files/doc.bin"
		client := &http.Client{Timeout: time.Minute}

		// A complete, acknowledged version.
		n := 2 * round
		req, _ := http.NewRequest("PUT", url, bytes.NewReader(crashVersion(n)))
		req.SetBasicAuth(testUser, testPass)
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode/100 != 2 {
			t.Fatalf("round %d: PUT: %v %v", round, resp, err)
		}
		resp.Body.Close()
		acked = n

		// The next one, cut off by a kill.
		next := crashVersion(n + 1)
		cut := rng.IntN(len(next) * 5 / 4)
		pr, pw := io.Pipe()
		sent := make(chan bool, 1)
		go func() {
			for off := 0; off < len(next); off += 32 << 10 {
				if off >= cut {
					sent <- false
					return
				}
				if _, err := pw.Write(next[off:min(off+32<<10, len(next))]); err != nil {
					sent <- false
					return
				}
			}
			pw.Close()
			time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond) // somewhere in the commit
			sent <- true
		}()
		req, _ = http.NewRequest("PUT", url, pr)
		req.SetBasicAuth(testUser, testPass)
		if round%2 == 0 {
			req.ContentLength = int64(len(next))
		}
		done := make(chan struct{})
		go func() {
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
			close(done)
		}()
		whole := <-sent
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		pw.CloseWithError(io.ErrClosedPipe)
		<-done
		if whole {
			afterBody++
		} else {
			midBody++
		}

		d, err := store.Open(dir, storetest.Options())
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Check(ctx); err != nil {
			t.Fatalf("round %d: consistency: %v", round, err)
		}
		a, err := d.Login(ctx, testUser, testPass, store.ScopeDAV)
		if err != nil {
			t.Fatal(err)
		}
		r, _, err := a.Files().Open(ctx, "doc.bin")
		if err != nil {
			t.Fatalf("round %d: open: %v", round, err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatalf("round %d: read: %v", round, err)
		}
		switch {
		case bytes.Equal(got, crashVersion(acked)):
		case whole && bytes.Equal(got, next):
			inflightWon++
		default:
			t.Fatalf("round %d: file is neither version %d nor a whole version %d (%d bytes, cut at %d, whole body sent: %v)",
				round, acked, n+1, len(got), cut, whole)
		}
		if used, _, _ := a.Used(ctx); used != int64(len(got)) {
			t.Fatalf("round %d: quota counts %d bytes, file has %d", round, used, len(got))
		}
		a.Close()
		d.Close()
	}
	t.Logf("killed %d uploads mid-body and %d after the body (%d of those committed first); the file stayed whole every time", midBody, afterBody, inflightWon)
}
