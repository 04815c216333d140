// Package admin carries kreide's administration commands (kreide user ...,
// kreide apppass ..., kreide dns, kreide queue ..., kreide backup, kreide
// verify) to the store.
//
// Every command is one Request answered by one Response, and Execute is the
// only code that acts on them. A command reaches Execute by one of two paths,
// so it behaves the same whether `kreide serve` runs or not:
//
//   - serve listens on the unix socket <data dir>/control.sock (mode 0600,
//     removed on exit). The CLI sends the request as one JSON line and reads
//     the response as one JSON line (Server, Call).
//   - When nothing listens there, the CLI opens the data dir itself and calls
//     Execute directly (Run). store.Open takes an exclusive lock on the data
//     dir, so a running serve and a direct open never both happen.
//
// Requests carry passwords, recovery codes and new app passwords travel back
// in responses: they go only over the 0600 socket, are never logged, and are
// never written anywhere else.
package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"kreide/store"
)

// Operations of a Request.
const (
	OpUserAdd       = "user.add"       // Address, Password → Account, RecoveryCode
	OpUserList      = "user.list"      // → Accounts
	OpUserPasswd    = "user.passwd"    // Address, Password (current), NewPassword
	OpUserDelete    = "user.delete"    // Address
	OpUserQuota     = "user.quota"     // Address, Quota (bytes)
	OpUserRecover   = "user.recover"   // Address, RecoveryCode, NewPassword → RecoveryCode (new)
	OpAppPassAdd    = "apppass.add"    // Address, Password, Label, Scopes → Token
	OpAppPassList   = "apppass.list"   // Address → AppPasswords
	OpAppPassRevoke = "apppass.revoke" // Address, Label
)

// Operations on the server as a whole (system.go): DNS records, the outbound
// queue, backups and checks.
const (
	OpDNSRecords = "dns.records" // Hostname → Records
	OpQueueList  = "queue.list"  // → Queue
	OpQueueRetry = "queue.retry" // ID
	OpQueueDrop  = "queue.drop"  // ID
	// OpBackup snapshots the data dir into Path, or, with Path empty, into a
	// new staging directory inside the data dir whose name comes back in
	// Path (the CLI then moves it where the administrator wants it: a
	// hardened serve may write nowhere but its data dir).
	OpBackup = "backup"
	// OpVerify checks a fresh snapshot of the data dir (store.Verify needs a
	// data dir no process is using) → Problems.
	OpVerify = "verify"
	// OpPing answers nothing but "serve is running".
	OpPing = "ping"
)

// Request is one administration command.
type Request struct {
	Op      string `json:"op"`
	Address string `json:"address,omitempty"`
	// Password is the password of a new account (user.add) or the current
	// password (user.passwd, apppass.add).
	Password     string   `json:"password,omitempty"`
	NewPassword  string   `json:"new_password,omitempty"`
	RecoveryCode string   `json:"recovery_code,omitempty"`
	Label        string   `json:"label,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
	Quota        int64    `json:"quota,omitempty"`

	// Hostname is the server's DNS name (dns.records), from the config.
	Hostname string `json:"hostname,omitempty"`
	// ID is a queued message (queue.retry, queue.drop).
	ID string `json:"id,omitempty"`
	// Path is where backup writes the snapshot ("": a staging directory).
	Path string `json:"path,omitempty"`
}

// Response is the answer to a Request. Error is empty on success; otherwise it
// is one line for the administrator.
type Response struct {
	Error string `json:"error,omitempty"`

	Account      *Account      `json:"account,omitempty"`
	Accounts     []Account     `json:"accounts,omitempty"`
	AppPasswords []AppPassword `json:"app_passwords,omitempty"`
	// RecoveryCode is the recovery code of a new account (user.add) or the
	// new one after user.recover. It is shown once.
	RecoveryCode string `json:"recovery_code,omitempty"`
	// Token is a new app password (apppass.add). It is shown once.
	Token string `json:"token,omitempty"`

	Records []DNSRecord `json:"records,omitempty"` // dns.records
	Queue   []QueueItem `json:"queue,omitempty"`   // queue.list
	// Path is the staging directory of backup, relative to the data dir.
	Path string `json:"path,omitempty"`
	// Problems are what verify found, one line each (Error says how many).
	Problems []string `json:"problems,omitempty"`
	// Woken says that queue.retry woke the running queue: the message is
	// being tried now rather than within a minute.
	Woken bool `json:"woken,omitempty"`
}

// Account is what an administrator sees of an account.
type Account struct {
	Login   string    `json:"login"`
	Aliases []string  `json:"aliases,omitempty"`
	Quota   int64     `json:"quota"`
	Created time.Time `json:"created"`
}

// AppPassword is what an administrator sees of an app password (no secret).
type AppPassword struct {
	Label    string    `json:"label"`
	Scopes   []string  `json:"scopes"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used,omitzero"`
}

func accountOf(info store.AccountInfo) Account {
	return Account{Login: info.Login, Aliases: info.Aliases, Quota: info.Quota, Created: info.Created}
}

// Execute runs req against dir. Both paths (socket and direct) call it, so a
// command behaves the same whether serve runs or not.
func Execute(ctx context.Context, dir *store.Directory, req Request) Response {
	return execute(ctx, dir, req, nil)
}

// execute is Execute with what a running serve adds (nil on the direct path).
func execute(ctx context.Context, dir *store.Directory, req Request, live *live) Response {
	if isSystemOp(req.Op) {
		return executeSystem(ctx, dir, req, live)
	}
	resp, err := executeAccount(ctx, dir, req)
	if err != nil {
		return Response{Error: describe(req, err)}
	}
	return resp
}

func executeAccount(ctx context.Context, dir *store.Directory, req Request) (Response, error) {
	var resp Response
	needAddress := req.Op != OpUserList
	if needAddress && strings.TrimSpace(req.Address) == "" {
		return resp, errors.New("no address given")
	}
	// The store answers "authentication failed" for an unknown account, so a
	// network client cannot probe for accounts. The administrator can list
	// them anyway, so say plainly when an account does not exist.
	var info store.AccountInfo
	if needAddress && req.Op != OpUserAdd {
		var err error
		if info, err = dir.Lookup(ctx, req.Address); err != nil {
			return resp, err
		}
	}
	switch req.Op {
	case OpUserAdd:
		c, err := dir.CreateAccount(ctx, req.Address, req.Password)
		if err != nil {
			return resp, err
		}
		a := accountOf(c.Account)
		resp.Account = &a
		resp.RecoveryCode = c.RecoveryCode
	case OpUserList:
		infos, err := dir.Accounts(ctx)
		if err != nil {
			return resp, err
		}
		resp.Accounts = make([]Account, 0, len(infos))
		for _, info := range infos {
			resp.Accounts = append(resp.Accounts, accountOf(info))
		}
	case OpUserPasswd:
		if err := dir.ChangePassword(ctx, info.Login, req.Password, req.NewPassword); err != nil {
			return resp, err
		}
	case OpUserDelete:
		if err := dir.DeleteAccount(ctx, info.Login); err != nil {
			return resp, err
		}
	case OpUserQuota:
		if err := dir.SetQuota(ctx, info.Login, req.Quota); err != nil {
			return resp, err
		}
	case OpUserRecover:
		code, err := dir.Recover(ctx, info.Login, req.RecoveryCode, req.NewPassword)
		if err != nil {
			return resp, err
		}
		resp.RecoveryCode = code
	case OpAppPassAdd:
		var scopes []store.Scope
		if len(req.Scopes) > 0 {
			var err error
			if scopes, err = store.ParseScopes(strings.Join(req.Scopes, ",")); err != nil {
				return resp, err
			}
		}
		token, err := dir.AddAppPassword(ctx, info.Login, req.Password, req.Label, scopes)
		if err != nil {
			return resp, err
		}
		resp.Token = token
	case OpAppPassList:
		aps, err := dir.AppPasswords(ctx, info.Login)
		if err != nil {
			return resp, err
		}
		resp.AppPasswords = make([]AppPassword, 0, len(aps))
		for _, ap := range aps {
			scopes := make([]string, len(ap.Scopes))
			for i, s := range ap.Scopes {
				scopes[i] = string(s)
			}
			resp.AppPasswords = append(resp.AppPasswords, AppPassword{
				Label: ap.Label, Scopes: scopes, Created: ap.Created, LastUsed: ap.LastUsed,
			})
		}
	case OpAppPassRevoke:
		if err := dir.RevokeAppPassword(ctx, info.Login, strings.TrimSpace(req.Label)); err != nil {
			return resp, err
		}
	default:
		return resp, fmt.Errorf("unknown command %q", req.Op)
	}
	return resp, nil
}

// describe turns a store error into one line an administrator can act on.
func describe(req Request, err error) string {
	addr := strings.TrimSpace(req.Address)
	if a, nerr := store.NormalizeAddress(addr); nerr == nil {
		addr = a
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		if req.Op == OpAppPassRevoke {
			return fmt.Sprintf("%s has no app password labelled %q (see kreide apppass list %s)", addr, strings.TrimSpace(req.Label), addr)
		}
		return fmt.Sprintf("there is no account %s (see kreide user list)", addr)
	case errors.Is(err, store.ErrAuthFailed):
		if req.Op == OpUserRecover {
			return fmt.Sprintf("wrong recovery code for %s", addr)
		}
		if req.Op == OpUserPasswd {
			return fmt.Sprintf("wrong current password for %s (without it, use kreide user recover)", addr)
		}
		return fmt.Sprintf("wrong password for %s", addr)
	case errors.Is(err, store.ErrExists):
		if req.Op == OpAppPassAdd {
			return fmt.Sprintf("%s already has an app password labelled %q: pick another label or revoke that one", addr, strings.TrimSpace(req.Label))
		}
		return fmt.Sprintf("%s already exists", detail(err, store.ErrExists, addr))
	case errors.Is(err, store.ErrUnknownDomain):
		return fmt.Sprintf("kreide does not serve the domain %s: add it to domains in the config file (and restart kreide serve if it runs)", detail(err, store.ErrUnknownDomain, addr))
	case errors.Is(err, store.ErrWeakPassword):
		return "the password is too short: use at least 8 characters"
	case errors.Is(err, store.ErrInvalid):
		return detail(err, store.ErrInvalid, "invalid argument")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "interrupted: " + err.Error()
	}
	return strings.TrimPrefix(err.Error(), "store: ")
}

// detail is what a store error says after its sentinel ("store: not found: x" → "x").
func detail(err, sentinel error, fallback string) string {
	msg := err.Error()
	if i := strings.Index(msg, sentinel.Error()+": "); i >= 0 {
		return msg[i+len(sentinel.Error())+2:]
	}
	return fallback
}
