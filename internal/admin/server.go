package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"kreide/protocols/smtp"
	"kreide/store"
)

// SocketName is the control socket's file name in the data dir.
const SocketName = "control.sock"

// maxRequest bounds one request line; real ones are a few hundred bytes.
const maxRequest = 64 << 10

// maxSocketPath is the longest path a unix socket can have on Linux (sun_path
// holds 108 bytes including the terminating NUL).
const maxSocketPath = 107

// SocketPath is where serve listens for administration commands.
func SocketPath(dataDir string) string { return filepath.Join(dataDir, SocketName) }

// Server answers administration requests on the control socket while serve runs.
type Server struct {
	dir    *store.Directory
	logger *slog.Logger
	path   string
	ln     *net.UnixListener

	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	queue  Queue // see SetQueue
}

// SetQueue makes queue.retry and queue.drop act on the running outbound
// queue q (serve passes its *smtp.Server), so that a retried message is
// tried at once. Without it they change the store, and the queue notices
// within a minute.
func (s *Server) SetQueue(q Queue) {
	if sq, ok := q.(*smtp.Server); ok && sq == nil {
		q = nil // no SMTP frontend
	}
	s.mu.Lock()
	s.queue = q
	s.mu.Unlock()
}

// Listen creates the control socket <data dir>/control.sock, readable and
// writable by kreide's user only. The caller must hold the data dir (an open
// dir), so any socket file already there was left by a process that died; it
// is replaced.
func Listen(dir *store.Directory, logger *slog.Logger) (*Server, error) {
	path := SocketPath(dir.Dir())
	// Bind in a fresh private directory, restrict the socket, then move it
	// into place: it is never reachable with looser permissions, whatever
	// the umask or the data dir's own mode.
	tmp, err := os.MkdirTemp(dir.Dir(), ".ctl")
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	defer os.RemoveAll(tmp)
	tmpPath := filepath.Join(tmp, "s")
	for _, p := range []string{tmpPath, path} {
		if len(p) > maxSocketPath {
			return nil, fmt.Errorf("control socket %s: path longer than %d bytes, which unix sockets do not allow: use a shorter data_dir", p, maxSocketPath)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmpPath, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmpPath, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Rename(tmpPath, path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sweepStaging(dir.Dir(), time.Now())
	s := &Server{dir: dir, logger: logger, path: path, ln: ln, conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// For example EMFILE: wait a little rather than spin.
			s.logger.Warn("control socket: accept failed", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			return
		}
		s.conns[conn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(conn)
	}
}

func (s *Server) handle(conn net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		conn.Close()
	}()
	s.mu.Lock()
	if s.closed {
		conn.SetReadDeadline(time.Now()) // serve is stopping: take no new command
	} else {
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	}
	s.mu.Unlock()
	br := bufio.NewReader(io.LimitReader(conn, maxRequest))
	line, err := br.ReadBytes('\n')
	if err != nil {
		s.logger.Warn("control socket: bad request", "err", err)
		return
	}
	var req Request
	var resp Response
	if err := json.Unmarshal(line, &req); err == nil && isTransfer(req.Op) {
		s.transfer(conn, br, req) // kreide import, kreide export: streams (transfer.go)
		return
	}
	if err := json.Unmarshal(line, &req); err != nil {
		resp.Error = "malformed request: " + err.Error()
	} else {
		// A command that started completes even if serve is stopping:
		// Close waits for it before the store is closed.
		s.mu.Lock()
		l := &live{queue: s.queue}
		s.mu.Unlock()
		resp = execute(context.Background(), s.dir, req, l)
		// Never log secrets: only what was done to whom.
		switch {
		case req.Op == OpPing:
		case resp.Error != "":
			s.logger.Info("admin command failed", "op", req.Op, "address", req.Address, "err", resp.Error)
		default:
			s.logger.Info("admin command", "op", req.Op, "address", req.Address)
		}
	}
	conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if err := writeJSONLine(conn, resp); err != nil {
		s.logger.Warn("control socket: writing response", "op", req.Op, "err", err)
		if req.Op == OpBackup && resp.Path != "" {
			// Nobody will copy the snapshot away.
			os.RemoveAll(filepath.Join(s.dir.Dir(), resp.Path))
		}
	}
}

// Close stops accepting, waits for commands in progress, and removes the socket.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for c := range s.conns {
		c.SetReadDeadline(time.Now()) // connections still sending a request
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

func writeJSONLine(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}
