package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"kreide/crypto"
)

// Buckets of system.db. See doc.go for what each holds.
var (
	bktDomains   = []byte("domains")
	bktAccounts  = []byte("accounts")
	bktAddresses = []byte("addresses")
	bktCreds     = []byte("creds")
	bktMeta      = []byte("meta")
)

// Options tune a Directory. The zero value is what serve uses.
type Options struct {
	// DefaultQuota is the quota in bytes given to new accounts (0: 2 GiB).
	DefaultQuota int64
	// Argon2 overrides the password hashing parameters for new wraps. Tests use
	// cheap parameters; production leaves it nil (crypto.NewArgon2Params).
	Argon2 func() crypto.Argon2Params
	// IdleClose is how long an unused account database stays open (0: 5 minutes).
	IdleClose time.Duration
	// UnlockCacheTTL is how long a password unlock is remembered in memory
	// (0: 15 minutes). Clients open many connections; Argon2 runs once.
	UnlockCacheTTL time.Duration
}

// Directory is system.db plus the set of per-account stores under users/.
// One process owns a data dir: Open takes an exclusive flock on it.
type Directory struct {
	dir  string
	opts Options
	lock *os.File

	mu sync.RWMutex // guards db replacement during compaction; held shared by every operation
	db *bolt.DB

	pool    *pool
	unlock  *unlockCache
	limiter *loginLimiter

	dummyOnce sync.Once
	dummy     *credRecord
	argonRuns atomic.Int64 // password checks that ran Argon2

	// loginHook, when set, hears of every login attempt (SetLoginHook).
	loginHook atomic.Pointer[func(scope Scope, ok bool)]
}

// AccountInfo is what the directory knows of an account without its key.
type AccountInfo struct {
	ID      string    `json:"id"`
	Login   string    `json:"login"`
	Aliases []string  `json:"aliases,omitempty"`
	Quota   int64     `json:"quota"`
	Created time.Time `json:"created"`

	// PublicKey is the account's KEM public key (public-key delivery path).
	PublicKey []byte `json:"pk"`
	// PrivateKey is the KEM private key wrapped under the user master key.
	PrivateKey []byte `json:"sk"`
	// DisplayName is sealed to PublicKey: the admin may set it, only the user reads it.
	DisplayName []byte `json:"dn,omitempty"`
}

// Open opens (creating if needed) the data dir.
func Open(dir string, opts Options) (*Directory, error) {
	if opts.DefaultQuota <= 0 {
		opts.DefaultQuota = 2 << 30
	}
	if opts.Argon2 == nil {
		opts.Argon2 = crypto.NewArgon2Params
	}
	if opts.IdleClose <= 0 {
		opts.IdleClose = 5 * time.Minute
	}
	if opts.UnlockCacheTTL <= 0 {
		opts.UnlockCacheTTL = 15 * time.Minute
	}
	if err := os.MkdirAll(filepath.Join(dir, "users"), 0o700); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	db, err := bolt.Open(filepath.Join(dir, "system.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open system.db: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bktDomains, bktAccounts, bktAddresses, bktCreds, bktMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		lock.Close()
		return nil, err
	}
	db.MaxBatchDelay = 2 * time.Millisecond
	d := &Directory{dir: dir, opts: opts, lock: lock, db: db}
	d.pool = newPool(d, opts.IdleClose)
	d.unlock = newUnlockCache(opts.UnlockCacheTTL)
	d.limiter = newLoginLimiter()
	return d, nil
}

// lockDir takes the data dir's exclusive lock, so a second serve fails clearly.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s", ErrDataDirInUse, dir)
	}
	f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return f, nil
}

// Close closes every open account and system.db, and releases the data dir.
func (d *Directory) Close() error {
	d.pool.closeAll()
	d.mu.Lock()
	err := d.db.Close()
	d.mu.Unlock()
	d.lock.Close()
	return err
}

// Dir is the data dir.
func (d *Directory) Dir() string { return d.dir }

func (d *Directory) view(fn func(tx *bolt.Tx) error) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.db.View(fn)
}

func (d *Directory) batch(fn func(tx *bolt.Tx) error) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.db.Batch(fn)
}

func (d *Directory) update(fn func(tx *bolt.Tx) error) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.db.Update(fn)
}

// NormalizeAddress lower-cases an address and checks its shape.
func NormalizeAddress(addr string) (string, error) {
	a := strings.ToLower(strings.TrimSpace(addr))
	at := strings.LastIndexByte(a, '@')
	if at <= 0 || at == len(a)-1 || strings.ContainsAny(a, " \t\r\n<>\"(),;:\\[]\x00") || strings.Count(a, "@") != 1 {
		return "", fmt.Errorf("%w: %q is not an e-mail address", ErrInvalid, addr)
	}
	return a, nil
}

func domainOf(addr string) string { return addr[strings.LastIndexByte(addr, '@')+1:] }

// AddDomain registers a mail domain served here.
func (d *Directory) AddDomain(ctx context.Context, domain string) error {
	domain = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(domain), "."))
	if domain == "" || strings.ContainsAny(domain, " @/\\") {
		return fmt.Errorf("%w: domain %q", ErrInvalid, domain)
	}
	return d.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bktDomains).Put([]byte(domain), []byte{1})
	})
}

// Domains lists the served domains.
func (d *Directory) Domains(ctx context.Context) ([]string, error) {
	var out []string
	err := d.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bktDomains).ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	return out, err
}

// ServesDomain reports whether domain is one of ours.
func (d *Directory) ServesDomain(ctx context.Context, domain string) bool {
	ok := false
	d.view(func(tx *bolt.Tx) error {
		ok = tx.Bucket(bktDomains).Get([]byte(strings.ToLower(domain))) != nil
		return nil
	})
	return ok
}

// Created is what CreateAccount returns: the one and only time the recovery code is shown.
type Created struct {
	Account      AccountInfo
	RecoveryCode string
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// CreateAccount creates an account with a password and a recovery code. The
// login's domain must be served here.
func (d *Directory) CreateAccount(ctx context.Context, login, password string) (*Created, error) {
	login, err := NormalizeAddress(login)
	if err != nil {
		return nil, err
	}
	if len(password) < 8 {
		return nil, ErrWeakPassword
	}
	if !d.ServesDomain(ctx, domainOf(login)) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownDomain, domainOf(login))
	}
	umk := crypto.NewKey()
	pub, priv, err := crypto.GenerateKEMKey()
	if err != nil {
		return nil, err
	}
	info := AccountInfo{
		ID:        newID(),
		Login:     login,
		Quota:     d.opts.DefaultQuota,
		Created:   time.Now().UTC().Truncate(time.Second),
		PublicKey: pub,
	}
	info.PrivateKey = crypto.WrapKey(umk, priv, []byte("kem-private|"+info.ID))
	pw := d.passwordCred(info.ID, umk, password)
	recoveryCode := crypto.NewToken(20)
	rc := tokenCred(info.ID, credRecovery, "recovery", nil, umk, recoveryCode)

	// The account's own store exists before the directory points at it, so a
	// crash in between leaves only an unreferenced directory. Batch: bulk
	// creation from many goroutines shares fsyncs.
	if err := d.pool.create(info.ID, umk); err != nil {
		return nil, err
	}
	err = d.batch(func(tx *bolt.Tx) error {
		addrs := tx.Bucket(bktAddresses)
		if addrs.Get([]byte(login)) != nil {
			return fmt.Errorf("%w: %s", ErrExists, login)
		}
		if err := putJSON(tx.Bucket(bktAccounts), []byte(info.ID), info); err != nil {
			return err
		}
		if err := addrs.Put([]byte(login), []byte(info.ID)); err != nil {
			return err
		}
		if err := putCred(tx, pw); err != nil {
			return err
		}
		return putCred(tx, rc)
	})
	if err != nil {
		os.RemoveAll(d.userDir(info.ID))
		return nil, err
	}
	return &Created{Account: info, RecoveryCode: recoveryCode}, nil
}

func (d *Directory) userDir(id string) string { return filepath.Join(d.dir, "users", id) }

// Lookup finds an account by its login or one of its aliases.
func (d *Directory) Lookup(ctx context.Context, address string) (AccountInfo, error) {
	var info AccountInfo
	addr, err := NormalizeAddress(address)
	if err != nil {
		return info, err
	}
	err = d.view(func(tx *bolt.Tx) error {
		id := tx.Bucket(bktAddresses).Get([]byte(addr))
		if id == nil {
			return ErrNotFound
		}
		return getJSON(tx.Bucket(bktAccounts), id, &info)
	})
	return info, err
}

func (d *Directory) accountByID(id string) (AccountInfo, error) {
	var info AccountInfo
	err := d.view(func(tx *bolt.Tx) error {
		return getJSON(tx.Bucket(bktAccounts), []byte(id), &info)
	})
	return info, err
}

// Accounts lists every account, sorted by login.
func (d *Directory) Accounts(ctx context.Context) ([]AccountInfo, error) {
	var out []AccountInfo
	err := d.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bktAccounts).ForEach(func(k, v []byte) error {
			var info AccountInfo
			if err := json.Unmarshal(v, &info); err != nil {
				return err
			}
			out = append(out, info)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Login < out[j].Login })
	return out, err
}

// CountAccounts is cheap: it does not decode records.
func (d *Directory) CountAccounts(ctx context.Context) (int, error) {
	n := 0
	err := d.view(func(tx *bolt.Tx) error {
		n = tx.Bucket(bktAccounts).Stats().KeyN
		return nil
	})
	return n, err
}

// SetQuota sets an account's quota in bytes; open sessions see it at once.
func (d *Directory) SetQuota(ctx context.Context, login string, bytes int64) error {
	if bytes <= 0 {
		return fmt.Errorf("%w: quota must be positive", ErrInvalid)
	}
	info, err := d.modifyAccount(login, func(info *AccountInfo) error {
		info.Quota = bytes
		return nil
	})
	if err == nil {
		d.pool.setQuota(info.ID, bytes)
	}
	return err
}

// AddAlias makes another address deliver to and send as the account.
func (d *Directory) AddAlias(ctx context.Context, login, alias string) error {
	alias, err := NormalizeAddress(alias)
	if err != nil {
		return err
	}
	if !d.ServesDomain(ctx, domainOf(alias)) {
		return fmt.Errorf("%w: %s", ErrUnknownDomain, domainOf(alias))
	}
	login, err = NormalizeAddress(login)
	if err != nil {
		return err
	}
	return d.update(func(tx *bolt.Tx) error {
		addrs := tx.Bucket(bktAddresses)
		id := addrs.Get([]byte(login))
		if id == nil {
			return ErrNotFound
		}
		if addrs.Get([]byte(alias)) != nil {
			return fmt.Errorf("%w: %s", ErrExists, alias)
		}
		var info AccountInfo
		if err := getJSON(tx.Bucket(bktAccounts), id, &info); err != nil {
			return err
		}
		info.Aliases = append(info.Aliases, alias)
		if err := putJSON(tx.Bucket(bktAccounts), id, info); err != nil {
			return err
		}
		return addrs.Put([]byte(alias), id)
	})
}

// SetDisplayName seals the display name to the account's public key, so the
// admin can set it while only the user can read it.
func (d *Directory) SetDisplayName(ctx context.Context, login, name string) error {
	_, err := d.modifyAccount(login, func(info *AccountInfo) error {
		pk, err := crypto.ParseKEMPublicKey(info.PublicKey)
		if err != nil {
			return err
		}
		sealed, err := pk.Seal([]byte("display-name|"+info.ID), []byte(name))
		if err != nil {
			return err
		}
		info.DisplayName = sealed
		return nil
	})
	return err
}

func (d *Directory) modifyAccount(login string, fn func(*AccountInfo) error) (AccountInfo, error) {
	var info AccountInfo
	login, err := NormalizeAddress(login)
	if err != nil {
		return info, err
	}
	err = d.update(func(tx *bolt.Tx) error {
		id := tx.Bucket(bktAddresses).Get([]byte(login))
		if id == nil {
			return ErrNotFound
		}
		if err := getJSON(tx.Bucket(bktAccounts), id, &info); err != nil {
			return err
		}
		if err := fn(&info); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bktAccounts), id, info)
	})
	return info, err
}

// DeleteAccount erases an account: its records, credentials and every file.
// system.db is then compacted so no freed page keeps a copy (GDPR erasure).
func (d *Directory) DeleteAccount(ctx context.Context, login string) error {
	info, err := d.Lookup(ctx, login)
	if err != nil {
		return err
	}
	err = d.update(func(tx *bolt.Tx) error {
		addrs := tx.Bucket(bktAddresses)
		addrs.Delete([]byte(info.Login))
		for _, a := range info.Aliases {
			addrs.Delete([]byte(a))
		}
		if err := deleteCreds(tx, info.ID); err != nil {
			return err
		}
		return tx.Bucket(bktAccounts).Delete([]byte(info.ID))
	})
	if err != nil {
		return err
	}
	d.unlock.forgetAccount(info.ID)
	d.pool.remove(info.ID)
	if err := os.RemoveAll(d.userDir(info.ID)); err != nil {
		return err
	}
	return d.compact()
}

// compact rewrites system.db without free pages, then swaps it in.
func (d *Directory) compact() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	path := filepath.Join(d.dir, "system.db")
	tmp := path + ".compact"
	os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, nil)
	if err != nil {
		return err
	}
	if err := bolt.Compact(dst, d.db, 1<<20); err != nil {
		dst.Close()
		os.Remove(tmp)
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	if err := d.db.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if err := syncDir(d.dir); err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	db.MaxBatchDelay = 2 * time.Millisecond
	d.db = db
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

func getJSON(b *bolt.Bucket, key []byte, v any) error {
	data := b.Get(key)
	if data == nil {
		return ErrNotFound
	}
	return json.Unmarshal(data, v)
}

// Check runs bbolt's consistency check on system.db and every account store.
// It needs no key.
func (d *Directory) Check(ctx context.Context) error {
	var errs []error
	d.view(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			errs = append(errs, fmt.Errorf("system.db: %w", err))
		}
		return nil
	})
	accounts, err := d.Accounts(ctx)
	if err != nil {
		return err
	}
	for _, a := range accounts {
		h, err := d.pool.acquire(a.ID)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.Login, err))
			continue
		}
		if err := h.check(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.Login, err))
		}
		d.pool.release(h)
	}
	return errors.Join(errs...)
}
