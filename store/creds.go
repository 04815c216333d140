package store

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"kreide/crypto"
)

// Scope limits what an app password may be used for.
type Scope string

// The scopes of app passwords. A password login has every scope.
const (
	ScopeIMAP Scope = "imap"
	ScopeSMTP Scope = "smtp"
	ScopeDAV  Scope = "dav"
)

// AllScopes is what an app password gets when none are named.
var AllScopes = []Scope{ScopeIMAP, ScopeSMTP, ScopeDAV}

// ParseScopes parses "imap,smtp,dav".
func ParseScopes(s string) ([]Scope, error) {
	var out []Scope
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(strings.ToLower(p))
		switch Scope(p) {
		case ScopeIMAP, ScopeSMTP, ScopeDAV:
			if !slices.Contains(out, Scope(p)) {
				out = append(out, Scope(p))
			}
		default:
			return nil, fmt.Errorf("%w: unknown scope %q (want imap, smtp or dav)", ErrInvalid, p)
		}
	}
	return out, nil
}

type credKind string

const (
	credPassword credKind = "password"
	credApp      credKind = "app"
	credRecovery credKind = "recovery"
)

// credRecord is one way to unwrap the user master key (UMK).
type credRecord struct {
	Account  string               `json:"a"`
	ID       string               `json:"id"`
	Kind     credKind             `json:"k"`
	Label    string               `json:"l,omitempty"`
	Scopes   []Scope              `json:"sc,omitempty"`
	Created  time.Time            `json:"c"`
	LastUsed time.Time            `json:"u,omitzero"`
	Argon2   *crypto.Argon2Params `json:"argon2,omitempty"` // password wraps
	Salt     []byte               `json:"salt,omitempty"`   // token wraps
	Wrapped  []byte               `json:"w"`
}

func (c *credRecord) key() []byte { return []byte(c.Account + "/" + c.ID) }
func (c *credRecord) aad() []byte { return []byte("umk|" + c.Account + "|" + c.ID) }

func (c *credRecord) kek(secret string) crypto.Key {
	if c.Argon2 != nil {
		return c.Argon2.DeriveKEK([]byte(secret))
	}
	return crypto.TokenKEK([]byte(crypto.NormalizeToken(secret)), c.Salt)
}

func (c *credRecord) open(secret string) (crypto.Key, error) {
	var umk crypto.Key
	raw, err := crypto.UnwrapKey(c.kek(secret), c.Wrapped, c.aad())
	if err != nil || len(raw) != len(umk) {
		return umk, ErrAuthFailed
	}
	copy(umk[:], raw)
	return umk, nil
}

func (d *Directory) passwordCred(account string, umk crypto.Key, password string) *credRecord {
	p := d.opts.Argon2()
	c := &credRecord{Account: account, ID: "password", Kind: credPassword, Created: time.Now().UTC(), Argon2: &p}
	c.Wrapped = crypto.WrapKey(p.DeriveKEK([]byte(password)), umk[:], c.aad())
	return c
}

func tokenCred(account string, kind credKind, id string, scopes []Scope, umk crypto.Key, token string) *credRecord {
	c := &credRecord{Account: account, ID: id, Kind: kind, Scopes: scopes, Created: time.Now().UTC()}
	salt := crypto.NewKey()
	c.Salt = salt[:16]
	c.Wrapped = crypto.WrapKey(crypto.TokenKEK([]byte(crypto.NormalizeToken(token)), c.Salt), umk[:], c.aad())
	return c
}

func putCred(tx *bolt.Tx, c *credRecord) error {
	return putJSON(tx.Bucket(bktCreds), c.key(), c)
}

func deleteCreds(tx *bolt.Tx, account string) error {
	b := tx.Bucket(bktCreds)
	prefix := []byte(account + "/")
	cur := b.Cursor()
	for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Seek(prefix) {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func (d *Directory) creds(account string) ([]*credRecord, error) {
	var out []*credRecord
	err := d.view(func(tx *bolt.Tx) error {
		prefix := []byte(account + "/")
		cur := tx.Bucket(bktCreds).Cursor()
		for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
			c := new(credRecord)
			if err := json.Unmarshal(v, c); err != nil {
				return err
			}
			out = append(out, c)
		}
		return nil
	})
	return out, err
}

// argonSlots bounds concurrent Argon2 runs (64 MiB each).
var argonSlots = make(chan struct{}, max(1, runtime.NumCPU()))

// dummyCred makes a failed lookup cost the same Argon2 run as a wrong password,
// so timing does not tell whether an account exists.
func (d *Directory) dummyCred() *credRecord {
	d.dummyOnce.Do(func() {
		p := d.opts.Argon2()
		d.dummy = &credRecord{Account: "-", ID: "-", Kind: credPassword, Argon2: &p, Wrapped: make([]byte, 64)}
	})
	return d.dummy
}

// unlockWith finds the credential that secret opens. Tokens are tried first:
// they are cheap, and clients that use them reconnect often.
func (d *Directory) unlockWith(ctx context.Context, info AccountInfo, secret string, scope Scope, kinds ...credKind) (crypto.Key, *credRecord, error) {
	creds, err := d.creds(info.ID)
	if err != nil {
		return crypto.Key{}, nil, err
	}
	var password *credRecord
	for _, c := range creds {
		if !slices.Contains(kinds, c.Kind) {
			continue
		}
		if c.Kind == credPassword {
			password = c
			continue
		}
		if scope != "" && !slices.Contains(c.Scopes, scope) {
			continue
		}
		if umk, err := c.open(secret); err == nil {
			return umk, c, nil
		}
	}
	if password == nil {
		if slices.Contains(kinds, credPassword) {
			password = d.dummyCred()
		} else {
			return crypto.Key{}, nil, ErrAuthFailed
		}
	}
	select {
	case argonSlots <- struct{}{}:
	case <-ctx.Done():
		return crypto.Key{}, nil, ctx.Err()
	}
	d.argonRuns.Add(1)
	umk, err := password.open(secret)
	<-argonSlots
	if err != nil || password.Account != info.ID {
		return crypto.Key{}, nil, ErrAuthFailed
	}
	return umk, password, nil
}

// Login authenticates address (login or alias) with a password or an app
// password of the given scope and returns the unlocked account. Close it when done.
func (d *Directory) Login(ctx context.Context, address, secret string, scope Scope) (*Account, error) {
	ip, name := remoteOf(ctx), strings.ToLower(strings.TrimSpace(address))
	if err := d.limiter.wait(ctx, ip, name); err != nil {
		return nil, err
	}
	a, err := d.login(ctx, address, secret, scope)
	if errors.Is(err, ErrAuthFailed) {
		d.limiter.fail(ip, name)
	} else if err == nil {
		d.limiter.succeed(ip, name)
	}
	if h := d.loginHook.Load(); h != nil && (err == nil || errors.Is(err, ErrAuthFailed)) {
		(*h)(scope, err == nil)
	}
	return a, err
}

// SetLoginHook makes Login call fn after every attempt that succeeds (ok) or
// fails with ErrAuthFailed (!ok): the metrics count logins with it. fn must
// be quick and must not call the Directory. nil removes the hook.
func (d *Directory) SetLoginHook(fn func(scope Scope, ok bool)) {
	if fn == nil {
		d.loginHook.Store(nil)
		return
	}
	d.loginHook.Store(&fn)
}

func (d *Directory) login(ctx context.Context, address, secret string, scope Scope) (*Account, error) {
	info, err := d.Lookup(ctx, address)
	if err != nil {
		// Same cost as a wrong password.
		d.unlockWith(ctx, AccountInfo{ID: "-"}, secret, scope, credPassword)
		return nil, ErrAuthFailed
	}
	if umk, ok := d.unlock.get(info.ID, secret, scope); ok {
		return d.openAccount(info, umk)
	}
	// A phone and a laptop opening several connections at once after a
	// restart must not each run Argon2 (64 MiB) for the same password: the
	// first runs it, the others wait and find its result in the cache.
	done, err := d.unlock.begin(ctx, info.ID, secret)
	if err != nil {
		return nil, err
	}
	defer done()
	if umk, ok := d.unlock.get(info.ID, secret, scope); ok {
		return d.openAccount(info, umk)
	}
	umk, cred, err := d.unlockWith(ctx, info, secret, scope, credPassword, credApp)
	if err != nil {
		return nil, err
	}
	d.unlock.put(info.ID, secret, cred, umk)
	if cred.Kind == credApp && time.Since(cred.LastUsed) > time.Minute {
		d.touchCred(cred)
	}
	return d.openAccount(info, umk)
}

func (d *Directory) touchCred(c *credRecord) {
	d.update(func(tx *bolt.Tx) error {
		var cur credRecord
		if err := getJSON(tx.Bucket(bktCreds), c.key(), &cur); err != nil {
			return nil // revoked meanwhile
		}
		cur.LastUsed = time.Now().UTC().Truncate(time.Second)
		return putCred(tx, &cur)
	})
}

// ChangePassword re-wraps the user master key under a new password. Nothing
// else is re-encrypted.
func (d *Directory) ChangePassword(ctx context.Context, login, oldPassword, newPassword string) error {
	if len(newPassword) < 8 {
		return ErrWeakPassword
	}
	info, err := d.Lookup(ctx, login)
	if err != nil {
		return ErrAuthFailed
	}
	umk, _, err := d.unlockWith(ctx, info, oldPassword, "", credPassword)
	if err != nil {
		return err
	}
	return d.setPassword(info, umk, newPassword)
}

func (d *Directory) setPassword(info AccountInfo, umk crypto.Key, password string) error {
	c := d.passwordCred(info.ID, umk, password)
	if err := d.update(func(tx *bolt.Tx) error { return putCred(tx, c) }); err != nil {
		return err
	}
	d.unlock.forgetAccount(info.ID)
	return nil
}

// Recover sets a new password with the recovery code, and returns a new
// recovery code (the old one is used up).
func (d *Directory) Recover(ctx context.Context, login, recoveryCode, newPassword string) (string, error) {
	if len(newPassword) < 8 {
		return "", ErrWeakPassword
	}
	info, err := d.Lookup(ctx, login)
	if err != nil {
		return "", ErrAuthFailed
	}
	umk, _, err := d.unlockWith(ctx, info, recoveryCode, "", credRecovery)
	if err != nil {
		return "", err
	}
	code := crypto.NewToken(20)
	rc := tokenCred(info.ID, credRecovery, "recovery", nil, umk, code)
	pw := d.passwordCred(info.ID, umk, newPassword)
	err = d.update(func(tx *bolt.Tx) error {
		if err := putCred(tx, rc); err != nil {
			return err
		}
		return putCred(tx, pw)
	})
	if err != nil {
		return "", err
	}
	d.unlock.forgetAccount(info.ID)
	return code, nil
}

// AppPassword describes an app password; its token is shown only at creation.
type AppPassword struct {
	Label    string
	Scopes   []Scope
	Created  time.Time
	LastUsed time.Time
}

// AddAppPassword creates an app password, unlocking with the account's password.
func (d *Directory) AddAppPassword(ctx context.Context, login, password, label string, scopes []Scope) (string, error) {
	info, err := d.Lookup(ctx, login)
	if err != nil {
		return "", ErrAuthFailed
	}
	umk, _, err := d.unlockWith(ctx, info, password, "", credPassword)
	if err != nil {
		return "", err
	}
	return d.addAppPassword(info, umk, label, scopes)
}

func (d *Directory) addAppPassword(info AccountInfo, umk crypto.Key, label string, scopes []Scope) (string, error) {
	label = strings.TrimSpace(label)
	if label == "" || len(label) > 100 || strings.ContainsAny(label, "\r\n\x00") {
		return "", fmt.Errorf("%w: app password label must be 1 to 100 characters on one line", ErrInvalid)
	}
	if len(scopes) == 0 {
		scopes = AllScopes
	}
	token := crypto.NewToken(20) // 160 bits
	c := tokenCred(info.ID, credApp, "app-"+newID()[:16], scopes, umk, token)
	c.Label = label
	err := d.update(func(tx *bolt.Tx) error {
		prefix := []byte(info.ID + "/")
		cur := tx.Bucket(bktCreds).Cursor()
		for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
			var other credRecord
			if err := json.Unmarshal(v, &other); err == nil && other.Kind == credApp && other.Label == label {
				return fmt.Errorf("%w: app password %q", ErrExists, label)
			}
		}
		return putCred(tx, c)
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// AppPasswords lists an account's app passwords (no secrets).
func (d *Directory) AppPasswords(ctx context.Context, login string) ([]AppPassword, error) {
	info, err := d.Lookup(ctx, login)
	if err != nil {
		return nil, err
	}
	creds, err := d.creds(info.ID)
	if err != nil {
		return nil, err
	}
	var out []AppPassword
	for _, c := range creds {
		if c.Kind == credApp {
			out = append(out, AppPassword{Label: c.Label, Scopes: c.Scopes, Created: c.Created, LastUsed: c.LastUsed})
		}
	}
	slices.SortFunc(out, func(a, b AppPassword) int { return strings.Compare(a.Label, b.Label) })
	return out, nil
}

// RevokeAppPassword deletes an app password's wrap; it stops working at once,
// also for logins remembered in memory.
func (d *Directory) RevokeAppPassword(ctx context.Context, login, label string) error {
	info, err := d.Lookup(ctx, login)
	if err != nil {
		return err
	}
	creds, err := d.creds(info.ID)
	if err != nil {
		return err
	}
	for _, c := range creds {
		if c.Kind == credApp && c.Label == label {
			err := d.update(func(tx *bolt.Tx) error { return tx.Bucket(bktCreds).Delete(c.key()) })
			if err != nil {
				return err
			}
			d.unlock.forgetCred(info.ID, c.ID)
			return nil
		}
	}
	return fmt.Errorf("%w: app password %q", ErrNotFound, label)
}

// unlockCache remembers successful logins in memory only, keyed by an HMAC
// under a per-process random key, so Argon2 runs once per user per TTL.
type unlockCache struct {
	key      crypto.Key
	ttl      time.Duration
	mu       sync.Mutex
	m        map[string]*unlockEntry
	inflight map[string]chan struct{} // slots whose secret is being checked
}

type unlockEntry struct {
	account, cred string
	scopes        []Scope // nil: every scope (password)
	wrapped       []byte
	expires       time.Time
}

func newUnlockCache(ttl time.Duration) *unlockCache {
	return &unlockCache{key: crypto.NewKey(), ttl: ttl, m: make(map[string]*unlockEntry), inflight: make(map[string]chan struct{})}
}

// begin waits until no other login checks the same secret for account,
// then claims the slot until done is called.
func (u *unlockCache) begin(ctx context.Context, account, secret string) (done func(), err error) {
	slot := u.slot(account, secret)
	u.mu.Lock()
	for {
		ch, busy := u.inflight[slot]
		if !busy {
			break
		}
		u.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		u.mu.Lock()
	}
	ch := make(chan struct{})
	u.inflight[slot] = ch
	u.mu.Unlock()
	return func() {
		u.mu.Lock()
		delete(u.inflight, slot)
		u.mu.Unlock()
		close(ch)
	}, nil
}

func (u *unlockCache) slot(account, secret string) string {
	m := hmac.New(sha256.New, u.key[:])
	m.Write([]byte(account))
	m.Write([]byte{0})
	m.Write([]byte(secret))
	return string(m.Sum(nil))
}

func (u *unlockCache) get(account, secret string, scope Scope) (crypto.Key, bool) {
	var umk crypto.Key
	slot := u.slot(account, secret)
	u.mu.Lock()
	defer u.mu.Unlock()
	e, ok := u.m[slot]
	if !ok || e.account != account {
		return umk, false
	}
	if time.Now().After(e.expires) {
		delete(u.m, slot)
		return umk, false
	}
	if e.scopes != nil && !slices.Contains(e.scopes, scope) {
		return umk, false
	}
	raw, err := crypto.UnwrapKey(u.key, e.wrapped, []byte(slot))
	if err != nil {
		return umk, false
	}
	copy(umk[:], raw)
	e.expires = time.Now().Add(u.ttl)
	return umk, true
}

func (u *unlockCache) put(account, secret string, c *credRecord, umk crypto.Key) {
	slot := u.slot(account, secret)
	e := &unlockEntry{account: account, cred: c.ID, wrapped: crypto.WrapKey(u.key, umk[:], []byte(slot)), expires: time.Now().Add(u.ttl)}
	if c.Kind == credApp {
		e.scopes = c.Scopes
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.m) > 100000 { // bounded: drop everything rather than grow without limit
		clear(u.m)
	}
	u.m[slot] = e
}

func (u *unlockCache) forgetAccount(account string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for k, e := range u.m {
		if e.account == account {
			delete(u.m, k)
		}
	}
}

func (u *unlockCache) forgetCred(account, cred string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for k, e := range u.m {
		if e.account == account && e.cred == cred {
			delete(u.m, k)
		}
	}
}
