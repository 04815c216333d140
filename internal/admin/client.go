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
	deadline := time.Now().Add(callTimeout)
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
	path := SocketPath(cfg.DataDir)
	// The lock can be held briefly by a serve that is starting (its socket
	// is not there yet) or by another admin command: try again for a while.
	giveUp := time.Now().Add(10 * time.Second)
	for {
		resp, err := Call(ctx, path, req)
		if err == nil || !errors.Is(err, errNoServer) {
			return resp, err
		}
		if _, err := os.Stat(cfg.DataDir); errors.Is(err, os.ErrNotExist) {
			return resp, fmt.Errorf("data dir %s does not exist: is -config right? (kreide serve creates it on first start)", cfg.DataDir)
		}
		dir, err := OpenDirectory(ctx, cfg)
		if err == nil {
			defer dir.Close()
			return Execute(ctx, dir, req), nil
		}
		if !errors.Is(err, store.ErrDataDirInUse) {
			return resp, err
		}
		if time.Now().After(giveUp) {
			return resp, fmt.Errorf("data dir %s is in use by another kreide process, and nothing answers on %s: wait for the other command to finish, or restart kreide serve", cfg.DataDir, path)
		}
		select {
		case <-ctx.Done():
			return resp, ctx.Err()
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
