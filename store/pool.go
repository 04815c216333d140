package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"kreide/crypto"
)

// pool keeps one handle per account store per process, opened lazily,
// reference-counted and closed when idle, so 33,000 accounts cost nothing
// until they are used.
type pool struct {
	d    *Directory
	idle time.Duration

	mu     sync.Mutex
	m      map[string]*handle
	closed bool
	stop   chan struct{}
}

// handle is one account's store.db and blob directory, shared by every
// session of that account in this process.
type handle struct {
	id  string
	dir string

	ready chan struct{} // closed once db is open (or openErr set)
	db    *bolt.DB
	err   error

	refs     int       // guarded by pool.mu
	lastUsed time.Time // guarded by pool.mu
	removed  bool      // guarded by pool.mu

	quota atomic.Int64

	pinMu    sync.Mutex // backups pin blobs: unlinks wait while pins > 0
	pins     int
	deferred []string

	watchMu  sync.Mutex
	watchers map[*Watcher]struct{}

	upgradeOnce sync.Once // re-wrap of locked deliveries, once per open

	writers atomic.Int32 // writes in flight through batch

	// Parsed KEM keys, cached: parsing costs about 100 µs (ML-KEM expansion).
	// The private key is cached only after an unlock, in memory only.
	pub  atomic.Pointer[crypto.KEMPublicKey]
	priv atomic.Pointer[crypto.KEMPrivateKey]

	// Delivery keys (deliver.go): the one this handle seals new deliveries
	// with, and those opened after an unlock.
	dkey   atomic.Pointer[deliveryKey]
	dkeyMu sync.Mutex
	opened map[[deliveryKeyIDLen]byte]crypto.Key
}

// publicKey returns the account's KEM public key (delivery while locked).
func (h *handle) publicKey(info AccountInfo) (*crypto.KEMPublicKey, error) {
	if pk := h.pub.Load(); pk != nil {
		return pk, nil
	}
	pk, err := crypto.ParseKEMPublicKey(info.PublicKey)
	if err != nil {
		return nil, err
	}
	h.pub.Store(pk)
	return pk, nil
}

func newPool(d *Directory, idle time.Duration) *pool {
	p := &pool{d: d, idle: idle, m: make(map[string]*handle), stop: make(chan struct{})}
	go p.reap()
	return p
}

func (p *pool) reap() {
	t := time.NewTicker(max(p.idle/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			var idle []*handle
			p.mu.Lock()
			for id, h := range p.m {
				if h.refs == 0 && now.Sub(h.lastUsed) > p.idle {
					delete(p.m, id)
					idle = append(idle, h)
				}
			}
			p.mu.Unlock()
			for _, h := range idle {
				<-h.ready
				if h.db != nil {
					h.db.Close()
				}
			}
		}
	}
}

// acquire returns the open handle of an account, opening it if needed.
func (p *pool) acquire(id string) (*handle, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	h, ok := p.m[id]
	if ok {
		h.refs++
		p.mu.Unlock()
		<-h.ready
		if h.err != nil {
			p.release(h)
			return nil, h.err
		}
		return h, nil
	}
	h = &handle{id: id, dir: p.d.userDir(id), ready: make(chan struct{}), refs: 1, watchers: make(map[*Watcher]struct{}),
		opened: make(map[[deliveryKeyIDLen]byte]crypto.Key)}
	p.m[id] = h
	p.mu.Unlock()

	h.err = h.open(p.d)
	close(h.ready)
	if h.err != nil {
		p.mu.Lock()
		if p.m[id] == h {
			delete(p.m, id)
		}
		p.mu.Unlock()
		return nil, h.err
	}
	return h, nil
}

func (p *pool) release(h *handle) {
	p.mu.Lock()
	h.refs--
	h.lastUsed = time.Now()
	p.mu.Unlock()
}

func (p *pool) setQuota(id string, quota int64) {
	p.mu.Lock()
	h := p.m[id]
	p.mu.Unlock()
	if h != nil {
		h.quota.Store(quota)
	}
}

// remove closes an account's handle for deletion, even if sessions use it:
// their next call fails.
func (p *pool) remove(id string) {
	p.mu.Lock()
	h := p.m[id]
	delete(p.m, id)
	if h != nil {
		h.removed = true
	}
	p.mu.Unlock()
	if h != nil {
		<-h.ready
		if h.db != nil {
			h.db.Close()
		}
	}
}

func (p *pool) closeAll() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.stop)
	hs := p.m
	p.m = nil
	p.mu.Unlock()
	for _, h := range hs {
		<-h.ready
		if h.db != nil {
			h.db.Close()
		}
	}
}

func (h *handle) open(d *Directory) error {
	info, err := d.accountByID(h.id)
	if err != nil {
		return fmt.Errorf("account %s: %w", h.id, err)
	}
	h.quota.Store(info.Quota)
	if _, err := os.Stat(filepath.Join(h.dir, "store.db")); err != nil {
		return fmt.Errorf("account %s: store missing: %w", info.Login, err)
	}
	db, err := bolt.Open(filepath.Join(h.dir, "store.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("account %s: %w", info.Login, err)
	}
	if err := db.Update(ensureBuckets); err != nil {
		db.Close()
		return err
	}
	db.MaxBatchDelay = 2 * time.Millisecond
	h.db = db
	go h.sweepOrphans(time.Now())
	return nil
}

// batch commits fn alone when it is the only write in flight (no waiting),
// and through bbolt's Batch when others are, so concurrent deliveries and
// appends to one account share one commit and its fsyncs. fn may run more
// than once: it must only touch tx.
func (h *handle) batch(fn func(tx *bolt.Tx) error) error {
	defer h.writers.Add(-1)
	if h.writers.Add(1) == 1 {
		return h.db.Update(fn)
	}
	return h.db.Batch(fn)
}

func (h *handle) check() error {
	var errs []error
	h.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return nil
	})
	return errors.Join(errs...)
}

// create makes a new account's store with its default mailboxes.
func (p *pool) create(id string, umk crypto.Key) error {
	dir := p.d.userDir(id)
	if err := os.MkdirAll(filepath.Join(dir, "blobs"), 0o700); err != nil {
		return err
	}
	db, err := bolt.Open(filepath.Join(dir, "store.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	keys := crypto.DeriveUserKeys(umk)
	a := &Account{id: id, keys: keys, rec: crypto.NewRecordCipher(keys.Record, id)}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := ensureBuckets(tx); err != nil {
			return err
		}
		for _, mb := range defaultMailboxes {
			if _, err := a.createMailboxTx(tx, mb.name, mb.role, true); err != nil {
				return err
			}
		}
		if err := a.createDefaultDAV(tx); err != nil {
			return err
		}
		return a.createDefaultFiles(tx)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(dir))
	}
	return err
}

var defaultMailboxes = []struct{ name, role string }{
	{"INBOX", RoleInbox},
	{"Drafts", RoleDrafts},
	{"Sent", RoleSent},
	{"Trash", RoleTrash},
	{"Junk", RoleJunk},
	{"Archive", RoleArchive},
}
