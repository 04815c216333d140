package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"kreide/config"
	"kreide/store"
)

// errNoServer means nothing listens on the control socket.
var errNoServer = errors.New("kreide serve is not running")

// callTimeout bounds one command over the socket. Commands run Argon2 once or
// twice (well under a second); deleting an account compacts system.db, which
// takes longer on a big directory.
const callTimeout = 10 * time.Minute

// longCallTimeout bounds a backup or a check over the socket: they copy the
// whole data dir, which may take hours on a big one (Ctrl-C stops waiting).
const longCallTimeout = 48 * time.Hour

// Call sends req to the serve listening on socketPath and returns its answer.
// The error wraps errNoServer when nothing listens there.
func Call(ctx context.Context, socketPath string, req Request) (Response, error) {
	var resp Response
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socketPath)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
			return resp, fmt.Errorf("%w (%v)", errNoServer, err)
		case errors.Is(err, os.ErrPermission):
			return resp, fmt.Errorf("cannot use the control socket %s: permission denied; run this command as the user kreide serve runs as", socketPath)
		}
		return resp, fmt.Errorf("control socket %s: %w", socketPath, err)
	}
	defer conn.Close()
	timeout := callTimeout
	if req.Op == OpBackup || req.Op == OpVerify {
		timeout = longCallTimeout
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if err := writeJSONLine(conn, req); err != nil {
		return resp, fmt.Errorf("sending the command to kreide serve: %w", err)
	}
	line, err := bufio.NewReader(io.LimitReader(conn, 64<<20)).ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			return resp, fmt.Errorf("interrupted while waiting for kreide serve; the command may or may not have been carried out: %w", ctx.Err())
		}
		return resp, fmt.Errorf("no answer from kreide serve (%v); the command may or may not have been carried out", err)
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		return resp, fmt.Errorf("unreadable answer from kreide serve: %w", err)
	}
	return resp, nil
}

// Run carries out req: through the control socket when serve runs, otherwise
// by opening the data dir itself. The error is about reaching the store;
// the command's own failure is in Response.Error.
func Run(ctx context.Context, cfg *config.Config, req Request) (Response, error) {
	resp, _, err := run(ctx, cfg, req, req)
	return resp, err
}

// run is Run with a request for each path: viaSocket when serve runs
// (served is then true), direct otherwise.
func run(ctx context.Context, cfg *config.Config, viaSocket, direct Request) (resp Response, served bool, err error) {
	path := SocketPath(cfg.DataDir)
	// The lock can be held briefly by a serve that is starting (its socket
	// is not there yet) or by another admin command: try again for a while.
	giveUp := time.Now().Add(10 * time.Second)
	for {
		resp, err := Call(ctx, path, viaSocket)
		if err == nil {
			return resp, true, nil
		}
		if !errors.Is(err, errNoServer) {
			return resp, false, err
		}
		if _, err := os.Stat(cfg.DataDir); errors.Is(err, os.ErrNotExist) {
			return resp, false, fmt.Errorf("data dir %s does not exist: is -config right? (kreide serve creates it on first start)", cfg.DataDir)
		}
		if err := checkOwner(cfg.DataDir); err != nil {
			return resp, false, err
		}
		dir, err := OpenDirectory(ctx, cfg)
		if err == nil {
			defer dir.Close()
			return Execute(ctx, dir, direct), false, nil
		}
		if !errors.Is(err, store.ErrDataDirInUse) {
			return resp, false, err
		}
		if time.Now().After(giveUp) {
			return resp, false, fmt.Errorf("data dir %s is in use by another kreide process, and nothing answers on %s: wait for the other command to finish, or restart kreide serve", cfg.DataDir, path)
		}
		select {
		case <-ctx.Done():
			return resp, false, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// InUseError says that another process holds the data dir.
type InUseError struct{ DataDir string }

func (e *InUseError) Error() string {
	return fmt.Sprintf("data dir %s is in use by another kreide process (is kreide serve already running with it?)", e.DataDir)
}

// Unwrap makes errors.Is(err, store.ErrDataDirInUse) true.
func (e *InUseError) Unwrap() error { return store.ErrDataDirInUse }

// OpenDirectory opens the data dir of cfg and makes sure the configured mail
// domains are registered in it. serve and the direct path of Run both use it.
func OpenDirectory(ctx context.Context, cfg *config.Config) (*store.Directory, error) {
	dir, err := store.Open(cfg.DataDir, store.Options{DefaultQuota: int64(cfg.Limits.DefaultQuota)})
	if err != nil {
		if errors.Is(err, store.ErrDataDirInUse) {
			return nil, &InUseError{DataDir: cfg.DataDir}
		}
		return nil, fmt.Errorf("opening data dir %s: %w", cfg.DataDir, err)
	}
	have, err := dir.Domains(ctx)
	if err != nil {
		dir.Close()
		return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	known := make(map[string]bool, len(have))
	for _, d := range have {
		known[d] = true
	}
	for _, d := range cfg.Domains {
		if known[d] {
			continue
		}
		if err := dir.AddDomain(ctx, d); err != nil {
			dir.Close()
			return nil, fmt.Errorf("adding domain %s to data dir %s: %w", d, cfg.DataDir, err)
		}
	}
	return dir, nil
}

// checkOwner refuses to let root open a data dir that belongs to another
// user (kreide's service user): files the store creates (a new account, a
// key) would belong to root, and serve could not read them afterwards.
// Through serve's socket, root is welcome.
func checkOwner(dataDir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(dataDir)
	if err != nil {
		return nil // reported when it is opened
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil
	}
	name := strconv.FormatUint(uint64(st.Uid), 10)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	return fmt.Errorf("data dir %s belongs to the user %s, and kreide serve is not running: run this command as that user (sudo -u %s kreide ...), or start kreide serve, so that the files it creates stay readable by kreide serve", dataDir, name, name)
}
