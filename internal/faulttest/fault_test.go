package faulttest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"kreide/store"
)

// seeded is how many messages and files each round prepares for the
// move and expunge workers.
const seeded = 120

// ledger records what clients attempted and what the server acknowledged.
type ledger struct {
	mu        sync.Mutex
	attempted map[string]bool
	acked     map[string]bool
	sizes     map[string]int
	// The versions of /files/over.bin, in the order they were written.
	overTried []string
	overAcked string
}

func newLedger() *ledger {
	return &ledger{attempted: map[string]bool{}, acked: map[string]bool{}, sizes: map[string]int{}}
}

func (l *ledger) attempt(id string, size int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.attempted[id] = true
	l.sizes[id] = size
}

func (l *ledger) ack(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked[id] = true
}

func (l *ledger) count(prefix string, m map[string]bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for id := range m {
		if strings.HasPrefix(id, prefix) {
			n++
		}
	}
	return n
}

// TestKillDuringWrites: rounds of SMTP submission, IMAP APPEND, MOVE and
// EXPUNGE, WebDAV PUT (new files and overwrites) and MOVE against a real
// `kreide serve`, killed with SIGKILL at a random moment each round. After
// every kill, with the server stopped: store.Verify passes, everything
// acknowledged is there and complete, nothing is half written, nothing
// moved is lost or doubled. Then the server restarts on the same data.
func TestKillDuringWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("kill tests skipped in -short mode")
	}
	rounds := 6
	if v, err := strconv.Atoi(os.Getenv("KREIDE_FAULT_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("KREIDE_FAULT_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("seed %d (KREIDE_FAULT_SEED=%d to repeat)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	s := newSite(t, t.TempDir())
	l := newLedger()
	s.withStore(func(a *store.Account) {
		ctx := context.Background()
		if _, err := a.CreateMailbox(ctx, "Work", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := a.CreateMailbox(ctx, "Moved", ""); err != nil {
			t.Fatal(err)
		}
	})
	for round := range rounds {
		uids := seedRound(t, s, l, round)
		s.start()
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, w := range []func(context.Context){
			func(ctx context.Context) { smtpWorker(ctx, s, l, round) },
			func(ctx context.Context) { appendWorker(ctx, s, l, round) },
			func(ctx context.Context) { moveWorker(ctx, s, l, round, uids.move) },
			func(ctx context.Context) { expungeWorker(ctx, s, l, round, uids.expunge) },
			func(ctx context.Context) { putWorker(ctx, s, l, round) },
			func(ctx context.Context) { davMoveWorker(ctx, s, l, round) },
		} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w(ctx)
			}()
		}
		delay := time.Duration(100+rng.IntN(600)) * time.Millisecond
		time.Sleep(delay)
		s.kill()
		cancel()
		waitTimeout(t, &wg, 30*time.Second)
		r := fmt.Sprintf("-%d-", round)
		t.Logf("round %d: SIGKILL after %v; acknowledged: %d deliveries, %d appends, %d moves, %d expunges, %d uploads, %d file moves, over.bin %q",
			round, delay, l.count("smtp"+r, l.acked), l.count("app"+r, l.acked), l.count("mv"+r, l.acked), l.count("ex"+r, l.acked),
			l.count("put"+r, l.acked), l.count("dmv"+r, l.acked), l.overAcked)
		s.verify()
		check(t, s, l)
	}
	// The data dir still starts and stops cleanly.
	s.start()
	s.stop()
	s.verify()
}

func waitTimeout(t *testing.T, wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatal("clients did not notice the dead server")
	}
}

type roundUIDs struct{ move, expunge map[uint32]string }

// seedRound prepares, with the server stopped, the messages and files the
// move and expunge workers work on.
func seedRound(t *testing.T, s *site, l *ledger, round int) roundUIDs {
	u := roundUIDs{move: map[uint32]string{}, expunge: map[uint32]string{}}
	s.withStore(func(a *store.Account) {
		ctx := context.Background()
		for _, mb := range []struct {
			name, prefix string
			uids         map[uint32]string
		}{{fmt.Sprintf("Src-%d", round), "mv", u.move}, {fmt.Sprintf("Exp-%d", round), "ex", u.expunge}} {
			m, err := a.CreateMailbox(ctx, mb.name, "")
			if err != nil {
				t.Fatal(err)
			}
			for i := range seeded {
				id := fmt.Sprintf("%s-%d-%d", mb.prefix, round, i)
				msg, err := a.Append(ctx, m.ID, bytes.NewReader(message(id, sizeOf(i))), nil, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				mb.uids[msg.UID] = id
				l.attempt(id, sizeOf(i))
			}
		}
		fs := a.Files()
		for _, d := range []string{fmt.Sprintf("src-%d", round), fmt.Sprintf("dst-%d", round)} {
			if _, err := fs.Mkdir(ctx, d, nil); err != nil {
				t.Fatal(err)
			}
		}
		for i := range seeded {
			id := fmt.Sprintf("dmv-%d-%d", round, i)
			w, err := fs.Create(ctx, fmt.Sprintf("src-%d/%s.txt", round, id), store.FileCreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			w.Write(content(id, sizeOf(i)))
			if _, _, err := w.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			l.attempt(id, sizeOf(i))
		}
	})
	return u
}

// Workers run until the server dies (or ctx ends): each failure on the wire
// ends them; an acknowledged operation is recorded in the ledger.

func smtpWorker(ctx context.Context, s *site, l *ledger, round int) {
	c, err := gosmtp.Dial(s.smtp)
	if err != nil {
		return
	}
	defer c.Close()
	if c.Hello("client.school.test") != nil || c.Auth(sasl.NewPlainClient("", user, pass)) != nil {
		return
	}
	for i := 0; ctx.Err() == nil; i++ {
		id := fmt.Sprintf("smtp-%d-%d", round, i)
		l.attempt(id, sizeOf(i))
		if c.Mail(user, nil) != nil || c.Rcpt(user, nil) != nil {
			return
		}
		w, err := c.Data()
		if err != nil {
			return
		}
		if _, err := w.Write(message(id, sizeOf(i))); err != nil {
			return
		}
		if w.Close() != nil {
			return
		}
		l.ack(id)
	}
}

func imapLogin(s *site) *imapclient.Client {
	c, err := imapclient.DialInsecure(s.imap, nil)
	if err != nil {
		return nil
	}
	if c.Login(user, pass).Wait() != nil {
		c.Close()
		return nil
	}
	return c
}

func appendWorker(ctx context.Context, s *site, l *ledger, round int) {
	c := imapLogin(s)
	if c == nil {
		return
	}
	defer c.Close()
	for i := 0; ctx.Err() == nil; i++ {
		id := fmt.Sprintf("app-%d-%d", round, i)
		msg := message(id, sizeOf(i+1))
		l.attempt(id, sizeOf(i+1))
		cmd := c.Append("Work", int64(len(msg)), nil)
		if _, err := cmd.Write(msg); err != nil {
			return
		}
		if cmd.Close() != nil {
			return
		}
		if _, err := cmd.Wait(); err != nil {
			return
		}
		l.ack(id)
	}
}

func moveWorker(ctx context.Context, s *site, l *ledger, round int, uids map[uint32]string) {
	c := imapLogin(s)
	if c == nil {
		return
	}
	defer c.Close()
	if _, err := c.Select(fmt.Sprintf("Src-%d", round), nil).Wait(); err != nil {
		return
	}
	for uid := uint32(1); ctx.Err() == nil && uid <= seeded; uid++ {
		if _, err := c.Move(imap.UIDSetNum(imap.UID(uid)), "Moved").Wait(); err != nil {
			return
		}
		l.ack(uids[uid])
	}
}

func expungeWorker(ctx context.Context, s *site, l *ledger, round int, uids map[uint32]string) {
	c := imapLogin(s)
	if c == nil {
		return
	}
	defer c.Close()
	if _, err := c.Select(fmt.Sprintf("Exp-%d", round), nil).Wait(); err != nil {
		return
	}
	for uid := uint32(1); ctx.Err() == nil && uid <= seeded; uid++ {
		set := imap.UIDSetNum(imap.UID(uid))
		if c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close() != nil {
			return
		}
		if c.UIDExpunge(set).Close() != nil {
			return
		}
		l.ack(uids[uid])
	}
}

func putWorker(ctx context.Context, s *site, l *ledger, round int) {
	hc := httpClient()
	defer hc.CloseIdleConnections()
	for i := 0; ctx.Err() == nil; i++ {
		id := fmt.Sprintf("put-%d-%d", round, i)
		l.attempt(id, sizeOf(i))
		code, _ := s.dav(hc, "PUT", "/files/"+id+".bin", content(id, sizeOf(i)))
		if code != http.StatusCreated && code != http.StatusNoContent {
			return
		}
		l.ack(id)
		// Overwrite one file again and again: after a crash it holds one
		// whole version.
		ver := fmt.Sprintf("over-%d-%d", round, i)
		l.mu.Lock()
		l.overTried = append(l.overTried, ver)
		l.mu.Unlock()
		code, _ = s.dav(hc, "PUT", "/files/over.bin", content(ver, sizeOf(i+1)))
		if code != http.StatusCreated && code != http.StatusNoContent {
			return
		}
		l.mu.Lock()
		l.overAcked = ver
		l.mu.Unlock()
	}
}

func davMoveWorker(ctx context.Context, s *site, l *ledger, round int) {
	hc := httpClient()
	defer hc.CloseIdleConnections()
	for i := 0; ctx.Err() == nil && i < seeded; i++ {
		id := fmt.Sprintf("dmv-%d-%d", round, i)
		code, _ := s.dav(hc, "MOVE", fmt.Sprintf("/files/src-%d/%s.txt", round, id), nil,
			"Destination", fmt.Sprintf("https://%s/files/dst-%d/%s.txt", s.https, round, id))
		if code != http.StatusCreated && code != http.StatusNoContent {
			return
		}
		l.ack(id)
	}
}

// check compares the data dir with the ledger (server stopped).
func check(t *testing.T, s *site, l *ledger) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	s.withStore(func(a *store.Account) {
		ctx := context.Background()
		// Where each message id is, and how often.
		where := map[string][]string{}
		mbs, err := a.Mailboxes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, mb := range mbs {
			var uids []uint32
			var subjects []string
			err := a.Messages(ctx, mb.ID, nil, store.FetchOptions{Envelope: true}, func(m *store.Message) error {
				uids = append(uids, m.UID)
				subjects = append(subjects, m.Envelope.Subject)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for i, uid := range uids {
				id := subjects[i]
				where[id] = append(where[id], mb.Name)
				r, err := a.OpenMessage(ctx, mb.ID, uid)
				if err != nil {
					t.Fatalf("message %s in %s: %v", id, mb.Name, err)
				}
				got, err := io.ReadAll(r)
				r.Close()
				if err != nil {
					t.Fatalf("reading message %s in %s: %v", id, mb.Name, err)
				}
				size, known := l.sizes[id]
				if !known {
					t.Errorf("message %q in %s was never sent", id, mb.Name)
					continue
				}
				if want := content(id, size); !bytes.HasSuffix(got, want) {
					t.Errorf("message %s in %s is incomplete or damaged (%d bytes)", id, mb.Name, len(got))
				}
			}
		}
		for id := range l.attempted {
			places := where[id]
			switch {
			case strings.HasPrefix(id, "smtp-"), strings.HasPrefix(id, "app-"):
				if len(places) > 1 {
					t.Errorf("message %s stored %d times: %v", id, len(places), places)
				}
				if l.acked[id] && len(places) == 0 {
					t.Errorf("acknowledged message %s is lost", id)
				}
			case strings.HasPrefix(id, "mv-"):
				if len(places) != 1 {
					t.Errorf("moved message %s is in %v, want exactly one mailbox", id, places)
				} else if l.acked[id] && places[0] != "Moved" {
					t.Errorf("acknowledged MOVE of %s, but it is in %s", id, places[0])
				}
			case strings.HasPrefix(id, "ex-"):
				if len(places) > 1 {
					t.Errorf("message %s stored %d times", id, len(places))
				}
				if l.acked[id] && len(places) > 0 {
					t.Errorf("acknowledged EXPUNGE of %s, but it is still in %v", id, places)
				}
			case strings.HasPrefix(id, "put-"):
				checkFile(t, a, id+".bin", id, l.sizes[id], l.acked[id])
			case strings.HasPrefix(id, "dmv-"):
				var round int
				fmt.Sscanf(id, "dmv-%d-", &round)
				src := fmt.Sprintf("src-%d/%s.txt", round, id)
				dst := fmt.Sprintf("dst-%d/%s.txt", round, id)
				inSrc := checkFile(t, a, src, id, l.sizes[id], false)
				inDst := checkFile(t, a, dst, id, l.sizes[id], l.acked[id])
				if inSrc == inDst {
					t.Errorf("moved file %s: in source %v, in destination %v; want exactly one", id, inSrc, inDst)
				}
			}
		}
		// over.bin holds one whole version, not older than the last
		// acknowledged one.
		if len(l.overTried) > 0 {
			r, _, err := a.Files().Open(ctx, "over.bin")
			if err != nil {
				if l.overAcked != "" {
					t.Errorf("over.bin: %v", err)
				}
				return
			}
			got, err := io.ReadAll(r)
			r.Close()
			if err != nil {
				t.Fatalf("reading over.bin: %v", err)
			}
			match := -1
			for i, v := range l.overTried {
				n, _ := strconv.Atoi(v[strings.LastIndexByte(v, '-')+1:])
				if bytes.Equal(got, content(v, sizeOf(n+1))) {
					match = i
				}
			}
			acked := -1
			for i, v := range l.overTried {
				if v == l.overAcked {
					acked = i
				}
			}
			if match < 0 {
				t.Errorf("over.bin is not any whole version written (%d bytes)", len(got))
			} else if match < acked {
				t.Errorf("over.bin is %s, older than the acknowledged %s", l.overTried[match], l.overAcked)
			}
		}
	})
}

// checkFile reports whether p exists; if it does, its content must be the
// whole content of id; if must, it has to exist.
func checkFile(t *testing.T, a *store.Account, p, id string, size int, must bool) bool {
	t.Helper()
	r, _, err := a.Files().Open(context.Background(), p)
	if err != nil {
		if must {
			t.Errorf("acknowledged file %s is lost: %v", p, err)
		}
		return false
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Errorf("reading %s: %v", p, err)
		return true
	}
	if !bytes.Equal(got, content(id, size)) {
		t.Errorf("file %s is incomplete or damaged (%d bytes, want %d)", p, len(got), len(content(id, size)))
	}
	return true
}
