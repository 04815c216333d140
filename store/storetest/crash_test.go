package storetest

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"kreide/store"
)

// crashMessage is message n of the crash test; every few is large enough to
// go to a blob file.
func crashMessage(n int) string {
	size := 200 + n%7*1000
	if n%5 == 0 {
		size = 150_000
	}
	return fmt.Sprintf("Subject: crash %d\r\n\r\n%s\r\n", n, strings.Repeat(strconv.Itoa(n%10), size))
}

// TestCrashChild is the child process of TestCrashDuringDelivery; it does
// nothing in a normal run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("KREIDE_CRASH_DIR")
	if dir == "" {
		t.Skip("child process of TestCrashDuringDelivery only")
	}
	d, err := store.Open(dir, Options())
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	start, _ := strconv.Atoi(os.Getenv("KREIDE_CRASH_START"))
	accounts := strings.Split(os.Getenv("KREIDE_CRASH_ACCOUNTS"), ",")
	var mu sync.Mutex
	next := start
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				n := next
				next++
				mu.Unlock()
				acct := accounts[(n+w)%len(accounts)]
				_, err := d.Deliver(ctx, []store.Recipient{{AccountID: acct}}, strings.NewReader(crashMessage(n)))
				mu.Lock()
				if err != nil {
					fmt.Fprintf(out, "error %d %v\n", n, err)
				} else {
					fmt.Fprintf(out, "ack %d %s\n", n, acct)
				}
				out.Flush() // the parent counts a message as acknowledged once it reads this line
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestCrashDuringDelivery kills a delivering child process at random
// moments, reopens the store, and checks that every acknowledged message is
// there and whole, that no partial message is visible, and that the bbolt
// files pass their consistency check.
func TestCrashDuringDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test starts child processes")
	}
	dir := t.TempDir()
	d, err := store.Open(dir, Options())
	if err != nil {
		t.Fatal(err)
	}
	d.AddDomain(ctx, "example.org")
	var ids []string
	logins := map[string]string{}
	for _, u := range []string{"a@example.org", "b@example.org", "c@example.org"} {
		c, err := d.CreateAccount(ctx, u, "password1")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.Account.ID)
		logins[c.Account.ID] = u
	}
	d.Close()

	acked := map[int]string{} // message number -> account id
	next := 0
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "KREIDE_CRASH_DIR="+dir, "KREIDE_CRASH_START="+strconv.Itoa(next), "KREIDE_CRASH_ACCOUNTS="+strings.Join(ids, ","))
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		deadline := time.After(time.Duration(300+rand.IntN(700)) * time.Millisecond)
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				f := strings.Fields(l)
				if len(f) >= 2 && f[0] == "ack" {
					n, _ := strconv.Atoi(f[1])
					acked[n] = f[2]
					next = max(next, n+1)
				} else if len(f) > 0 && f[0] == "error" {
					t.Fatalf("child: %s", l)
				}
			case <-deadline:
				cmd.Process.Signal(syscall.SIGKILL)
				break read
			}
		}
		for l := range lines { // lines written before the kill are acknowledged too
			if f := strings.Fields(l); len(f) >= 3 && f[0] == "ack" {
				n, _ := strconv.Atoi(f[1])
				acked[n] = f[2]
				next = max(next, n+1)
			}
		}
		cmd.Wait()
		next += 1000 // numbers in flight at the kill may or may not be stored; never reuse them

		d, err := store.Open(dir, Options())
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Check(ctx); err != nil {
			t.Fatalf("round %d: consistency: %v", round, err)
		}
		found := map[int]bool{}
		for id, login := range logins {
			a, err := d.Login(ctx, login, "password1", store.ScopeIMAP)
			if err != nil {
				t.Fatal(err)
			}
			inbox, _ := a.MailboxByName(ctx, "INBOX")
			uids, _ := a.UIDs(ctx, inbox.ID)
			if int(inbox.Messages) != len(uids) {
				t.Fatalf("round %d: mailbox count %d but %d messages", round, inbox.Messages, len(uids))
			}
			for _, uid := range uids {
				r, err := a.OpenMessage(ctx, inbox.ID, uid)
				if err != nil {
					t.Fatalf("round %d: visible message unreadable: %v", round, err)
				}
				b, err := io.ReadAll(r)
				r.Close()
				if err != nil {
					t.Fatalf("round %d: partial message visible: %v", round, err)
				}
				var n int
				if _, err := fmt.Sscanf(string(b), "Subject: crash %d", &n); err != nil || string(b) != crashMessage(n) {
					t.Fatalf("round %d: message content wrong", round)
				}
				if found[n] {
					t.Fatalf("round %d: message %d stored twice", round, n)
				}
				found[n] = true
				if acct, ok := acked[n]; ok && acct != id {
					t.Fatalf("message %d in the wrong account", n)
				}
			}
			a.Close()
		}
		for n := range acked {
			if !found[n] {
				t.Fatalf("round %d: acknowledged message %d lost", round, n)
			}
		}
		t.Logf("round %d: %d acknowledged, %d stored", round, len(acked), len(found))
		d.Close()
	}
	if len(acked) < 20 {
		t.Fatalf("only %d deliveries acknowledged: the test proved little", len(acked))
	}
}
