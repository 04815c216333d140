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
//
// An open handle that nobody reads or writes (the account of a session
// waiting in IMAP IDLE) costs its few heap objects and the pages of its
// database mapped into the process: bbolt reads through mmap, and the kernel
// maps not only the page a read faults on but whatever of the 64 KiB around
// it is in the page cache (fault-around, which bbolt's MADV_RANDOM does not
// turn off), so the first read of a small database maps all of it. Those
// mappings are dropped once the handle has gone unused for unmapAfter (to
// one unmapTick more; see unmapQuiet): the pages stay in the page cache,
// clean and reclaimable, and the next read maps them again with a minor
// fault.
type pool struct {
	d          *Directory
	idle       time.Duration
	unmapAfter time.Duration // 0: never drop mappings

	mu     sync.Mutex
	m      map[string]*handle
	closed bool
	stop   chan struct{}
	bg     sync.WaitGroup // reap and blob sweeps: closeAll waits for them

	// unmapMu serializes unmapQuiet and guards system.db's activity as
	// unmapDirectory last saw it.
	unmapMu     sync.Mutex
	sysDB       *bolt.DB
	sysTxN      int
	sysWrites   int64
	sysQuiet    int
	sysUnmapped bool
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

	// used is set by every transaction through the handle (touch) and
	// cleared by the pool's unmap tick; quiet counts the ticks since it was
	// last found set, and unmapped says the mappings were dropped since.
	used     atomic.Bool
	quiet    int  // guarded by pool.mu
	unmapped bool // guarded by pool.mu

	quota atomic.Int64

	pinMu    sync.Mutex // backups pin blobs: unlinks wait while pins > 0
	pins     int
	deferred []string

	watchMu  sync.Mutex
	watchers map[*Watcher]struct{} // made by the first Watch

	upgradeOnce sync.Once // re-wrap of locked deliveries, once per open

	writers atomic.Int32 // writes in flight through batch

	// Delivery keys (deliver.go): the one this handle seals new deliveries
	// with, and those opened after an unlock. The KEM keys themselves are not
	// kept: the public key is parsed (about 6 KiB expanded) only to seal a
	// new delivery key, once per handle; each Account holds the private key
	// as its 32-byte seed.
	dkey   atomic.Pointer[deliveryKey]
	dkeyMu sync.Mutex
	opened map[[deliveryKeyIDLen]byte]crypto.Key // made by the first open
}

// touch records that the handle's database is in use, so that the pool
// leaves its mappings alone (unmapQuiet). Cheap enough for every
// transaction: a load, and a store only when the flag was clear.
func (h *handle) touch() {
	if !h.used.Load() {
		h.used.Store(true)
	}
}

// unmapTick is how often the pool looks for handles to unmap; unmapAfter
// (a whole number of ticks) how long a handle must go unused first. A
// session at work uses its account many times a second; five seconds without
// a transaction mean it waits (IMAP IDLE) or has gone. Dropping costs one
// madvise per handle; mapping again, a minor fault per 64 KiB read.
const (
	unmapTick  = time.Second
	unmapAfter = 5 * time.Second
)

func newPool(d *Directory, idle time.Duration) *pool {
	p := &pool{d: d, idle: idle, unmapAfter: unmapAfter, m: make(map[string]*handle), stop: make(chan struct{})}
	p.bg.Go(p.reap)
	return p
}

func (p *pool) reap() {
	t := time.NewTicker(max(p.idle/4, 10*time.Millisecond))
	defer t.Stop()
	u := time.NewTicker(unmapTick)
	defer u.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-u.C:
			p.unmapQuiet()
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

// unmapQuiet drops the mapped pages of the databases of handles unused for
// p.unmapAfter (the account of a session in IMAP IDLE, say), and of
// system.db when the Directory has been quiet as long.
//
// madvise(MADV_DONTNEED) on bbolt's read-only shared mapping of the file
// only removes the process's page table entries: nothing is lost (bbolt
// writes with pwrite, never through the mapping), the pages stay in the page
// cache as clean, unmapped (and so more readily reclaimed) file pages, and
// the next read maps them again with a minor fault. It runs inside a read
// transaction, which keeps bbolt from remapping the file meanwhile; the range
// is the database's high-water mark (Tx.Size), which the mapping always
// covers.
func (p *pool) unmapQuiet() {
	if p.unmapAfter <= 0 {
		return
	}
	p.unmapMu.Lock()
	defer p.unmapMu.Unlock()
	need := int(max(p.unmapAfter/unmapTick, 1))
	var quiet []*handle
	p.mu.Lock()
	for _, h := range p.m {
		if h.used.Swap(false) {
			h.quiet, h.unmapped = 0, false
			continue
		}
		if h.unmapped {
			continue
		}
		if h.quiet++; h.quiet < need {
			continue
		}
		select {
		case <-h.ready:
		default:
			continue // still opening
		}
		if h.db != nil {
			h.unmapped = true
			quiet = append(quiet, h)
		}
	}
	p.mu.Unlock()
	for _, h := range quiet {
		h.db.View(func(tx *bolt.Tx) error {
			dropMapping(h.db, tx)
			return nil
		})
	}
	p.unmapDirectory(need)
}

// unmapDirectory does for system.db what unmapQuiet does for the accounts:
// logins, lookups and deliveries read it, so its mapped pages grow with the
// number of accounts used. Its activity is read from bbolt's counters of
// read transactions and page writes, which the View doing the drop moves
// too: the counters are taken again after it.
func (p *pool) unmapDirectory(need int) {
	d := p.d
	d.mu.RLock()
	defer d.mu.RUnlock()
	st := d.db.Stats()
	txs, writes := st.TxN, st.TxStats.GetWrite()
	if d.db != p.sysDB || txs != p.sysTxN || writes != p.sysWrites {
		p.sysDB, p.sysTxN, p.sysWrites, p.sysQuiet, p.sysUnmapped = d.db, txs, writes, 0, false
		return
	}
	if p.sysUnmapped {
		return
	}
	if p.sysQuiet++; p.sysQuiet < need {
		return
	}
	d.db.View(func(tx *bolt.Tx) error {
		dropMapping(d.db, tx)
		return nil
	})
	st = d.db.Stats()
	p.sysTxN, p.sysWrites, p.sysUnmapped = st.TxN, st.TxStats.GetWrite(), true
}

// acquire returns the open handle of an account, opening it if needed.
func (p *pool) acquire(id string) (*handle, error) {
	return p.acquireWith(id, nil)
}

// acquireWith is acquire with the account's directory record at hand, which
// spares opening the handle a lookup in system.db.
func (p *pool) acquireWith(id string, info *AccountInfo) (*handle, error) {
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
	h = &handle{id: id, dir: p.d.userDir(id), ready: make(chan struct{}), refs: 1}
	p.m[id] = h
	p.mu.Unlock()

	h.err = h.open(p.d, info)
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
		<-h.ready // an open in progress may still start its sweep
	}
	// A sweep still walking the blob directories would keep them open
	// (and their file system busy) after Close returns.
	p.bg.Wait()
	for _, h := range hs {
		if h.db != nil {
			h.db.Close()
		}
	}
}

func (h *handle) open(d *Directory, known *AccountInfo) error {
	info := known
	if info == nil {
		i, err := d.accountByID(h.id)
		if err != nil {
			return fmt.Errorf("account %s: %w", h.id, err)
		}
		info = &i
	}
	h.quota.Store(info.Quota)
	if _, err := os.Stat(filepath.Join(h.dir, "store.db")); err != nil {
		return fmt.Errorf("account %s: store missing: %w", info.Login, err)
	}
	db, err := bolt.Open(filepath.Join(h.dir, "store.db"), 0o600, accountDBOptions)
	if err != nil {
		return fmt.Errorf("account %s: %w", info.Login, err)
	}
	// Buckets added by a newer version are created here, in a write
	// transaction only when one is missing: a write at every open would cost
	// two fsyncs and a new freelist page each time an account is opened.
	if db.View(hasBuckets) != nil {
		if err := db.Update(ensureBuckets); err != nil {
			db.Close()
			return fmt.Errorf("account %s: %w", info.Login, err)
		}
	}
	db.MaxBatchDelay = 2 * time.Millisecond
	h.db = db
	h.touch()
	opened := time.Now()
	d.pool.bg.Go(func() { h.sweepOrphans(opened, d.pool.stop) })
	return nil
}

// accountDBOptions open an account's store.db. bbolt's statistics are off:
// nothing reads them, and they cost a lock per transaction and a little
// memory per open handle. The freelist stays synced to disk: without it,
// bbolt rebuilds the freelist at open by reading every page of the file.
var accountDBOptions = &bolt.Options{Timeout: time.Second, NoStatistics: true}

// batch commits fn alone when it is the only write in flight (no waiting),
// and through bbolt's Batch when others are, so concurrent deliveries and
// appends to one account share one commit and its fsyncs. fn may run more
// than once: it must only touch tx.
func (h *handle) batch(fn func(tx *bolt.Tx) error) error {
	h.touch()
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
	db, err := bolt.Open(filepath.Join(dir, "store.db"), 0o600, accountDBOptions)
	if err != nil {
		return err
	}
	keys := crypto.DeriveUserKeys(umk)
	a := &Account{id: id, keys: keys, rec: crypto.NewRecordCipher(keys.Record, id)}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := ensureBuckets(tx); err != nil {
			return err
		}
		// Nothing delivered yet: the first unlock need not look for
		// messages to re-wrap (upgradeLocked).
		if err := tx.Bucket(bktAcctMeta).Put(metaPending, putUint64(0)); err != nil {
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
