package admin

// Streaming commands: kreide import and kreide export move a whole
// account's data, so they do not fit one request and one response. They
// start like every command (one JSON request line, one JSON response line
// that says whether the account unlocked) and then exchange frames on the
// same connection: a type byte, a 4-byte big-endian length, the payload.
//
//	import, CLI -> serve:  'I' item (JSON portability.Item), 'D' content...,
//	                       'E' end of content (or 'X' reason: the CLI could
//	                       not read it), ... 'Q' no more items
//	import, serve -> CLI:  'A' outcome of each item, in order (JSON ack),
//	                       'R' the final Response
//	export, serve -> CLI:  'P' progress (JSON portability.Progress), 'D' tar
//	                       stream..., 'R' the final Response
//
// The CLI reads and writes the admin's files (with the admin's
// permissions) and serve touches only the store: nothing crosses between
// users, and the export is encrypted by the CLI before it reaches a disk.
// When serve does not run, the CLI opens the data dir and runs the same
// portability code itself.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"kreide/config"
	"kreide/internal/portability"
	"kreide/store"
)

// Operations of the streaming commands.
const (
	OpImport = "import" // Address, Password; then items (see above)
	OpExport = "export" // Address, Password; then the tar stream (see above)
)

// isTransfer reports whether op is a streaming command.
func isTransfer(op string) bool { return op == OpImport || op == OpExport }

// Frame types.
const (
	frameItem     = 'I'
	frameData     = 'D'
	frameEnd      = 'E'
	frameAbort    = 'X'
	frameQuit     = 'Q'
	frameAck      = 'A'
	frameProgress = 'P'
	frameResult   = 'R'
)

// maxFrame bounds one frame's payload.
const maxFrame = 1 << 20

type ack struct {
	Error string `json:"error,omitempty"`
	Fatal bool   `json:"fatal,omitempty"`
}

func writeFrame(w *bufio.Writer, t byte, payload []byte) error {
	var hdr [5]byte
	hdr[0] = t
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

func writeJSONFrame(w *bufio.Writer, t byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := writeFrame(w, t, data); err != nil {
		return err
	}
	return w.Flush()
}

// frameReader reads frames into one reused buffer.
type frameReader struct {
	r   *bufio.Reader
	buf []byte
}

func (f *frameReader) read() (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(f.r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("frame of %d bytes: protocol error", n)
	}
	if cap(f.buf) < int(n) {
		f.buf = make([]byte, n, max(int(n), 64<<10))
	}
	f.buf = f.buf[:n]
	if _, err := io.ReadFull(f.r, f.buf); err != nil {
		return 0, nil, err
	}
	return hdr[0], f.buf, nil
}

// dataWriter wraps what is written into 'D' frames.
type dataWriter struct{ w *bufio.Writer }

func (d dataWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxFrame)]
		if err := writeFrame(d.w, frameData, chunk); err != nil {
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// unlock opens the account of a streaming command with the user's
// password. It needs both the imap and the dav scope, so an app password
// limited to one protocol does not give away the rest.
func unlock(ctx context.Context, dir *store.Directory, req Request) (*store.Account, error) {
	info, err := dir.Lookup(ctx, req.Address)
	if err != nil {
		return nil, err
	}
	a, err := dir.Login(ctx, info.Login, req.Password, store.ScopeIMAP)
	if err != nil {
		return nil, err
	}
	b, err := dir.Login(ctx, info.Login, req.Password, store.ScopeDAV)
	if err != nil {
		a.Close()
		return nil, err
	}
	b.Close()
	return a, nil
}

// Serve side.

// transfer serves a streaming command on conn. br holds what was read
// after the request line.
func (s *Server) transfer(conn net.Conn, br *bufio.Reader, req Request) {
	pending, _ := br.Peek(br.Buffered())
	r := &frameReader{r: bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(pending)), conn), 64<<10)}
	w := bufio.NewWriterSize(conn, 64<<10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The command may run for an hour: serve stopping ends it (each item is
	// stored whole or not at all).
	go s.cancelOnClose(ctx, cancel)
	conn.SetDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	a, err := unlock(ctx, s.dir, req)
	if err != nil {
		msg := describe(req, err)
		s.logger.Info("admin command failed", "op", req.Op, "address", req.Address, "err", msg)
		conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		writeJSONLine(conn, Response{Error: msg})
		return
	}
	defer a.Close()
	if err := writeJSONLine(w, Response{}); err != nil {
		return // the client has gone
	}
	if err := w.Flush(); err != nil {
		return
	}
	s.logger.Info("admin command", "op", req.Op, "address", req.Address)
	start := time.Now()
	var n int64
	switch req.Op {
	case OpImport:
		n, err = serveImport(ctx, a, r, w)
	case OpExport:
		n, err = serveExport(ctx, a, w)
	}
	if err != nil {
		if s.isClosed() {
			err = fmt.Errorf("kreide serve is stopping: %w", err)
		}
		s.logger.Info("admin command failed", "op", req.Op, "address", req.Address, "items", n, "err", err)
		return
	}
	s.logger.Info("admin command done", "op", req.Op, "address", req.Address, "items", n, "took", time.Since(start).Round(time.Millisecond))
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Server) cancelOnClose(ctx context.Context, cancel func()) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if s.isClosed() {
				cancel()
				return
			}
		}
	}
}

// itemBody reads one item's content from 'D' frames up to 'E' or 'X'.
type itemBody struct {
	r    *frameReader
	cur  []byte
	done bool
	err  error // what ended the content: io.EOF, the CLI's reason, or a broken connection
}

func (b *itemBody) Read(p []byte) (int, error) {
	for len(b.cur) == 0 {
		if b.done {
			return 0, b.err
		}
		t, payload, err := b.r.read()
		switch {
		case err != nil:
			b.done, b.err = true, fmt.Errorf("%w: %w", errConnection, err)
		case t == frameData:
			b.cur = payload
		case t == frameEnd:
			b.done, b.err = true, io.EOF
		case t == frameAbort:
			b.done, b.err = true, errors.New(string(payload))
		default:
			b.done, b.err = true, fmt.Errorf("%w: unexpected frame %q", errConnection, t)
		}
	}
	n := copy(p, b.cur)
	b.cur = b.cur[n:]
	return n, nil
}

// drain reads the rest of the content (the sink may have stopped early);
// the error is a broken connection.
func (b *itemBody) drain() error {
	io.Copy(io.Discard, b)
	if errors.Is(b.err, errConnection) {
		return b.err
	}
	return nil
}

var errConnection = errors.New("connection to the kreide command lost")

func serveImport(ctx context.Context, a *store.Account, r *frameReader, w *bufio.Writer) (int64, error) {
	sink := portability.NewStoreSink(a)
	var n int64
	for {
		t, payload, err := r.read()
		if err != nil {
			return n, fmt.Errorf("%w: %w", errConnection, err)
		}
		switch t {
		case frameQuit:
			return n, writeJSONFrame(w, frameResult, Response{})
		case frameItem:
		default:
			return n, fmt.Errorf("%w: unexpected frame %q", errConnection, t)
		}
		var it portability.Item
		if err := json.Unmarshal(payload, &it); err != nil {
			return n, fmt.Errorf("%w: bad item: %w", errConnection, err)
		}
		body := &itemBody{r: r}
		var outcome error
		fatal := sink.Put(ctx, &it, body, func(err error) { outcome = err })
		if err := body.drain(); err != nil {
			return n, err
		}
		n++
		a := ack{Fatal: fatal != nil}
		switch {
		case fatal != nil:
			a.Error = describeTransfer(fatal)
		case outcome != nil:
			a.Error = outcome.Error()
		}
		if err := writeJSONFrame(w, frameAck, a); err != nil {
			return n, err
		}
		if fatal != nil {
			writeJSONFrame(w, frameResult, Response{Error: describeTransfer(fatal)})
			return n, fatal
		}
	}
}

func serveExport(ctx context.Context, a *store.Account, w *bufio.Writer) (int64, error) {
	var last time.Time
	var p portability.Progress
	var werr error
	err := portability.Export(ctx, a, dataWriter{w}, func(np portability.Progress) {
		p = np
		if werr == nil && (time.Since(last) > 200*time.Millisecond || np.Done == np.Items) {
			last = time.Now()
			werr = writeJSONFrame(w, frameProgress, np)
		}
	})
	if err == nil {
		err = werr
	}
	resp := Response{}
	if err != nil {
		resp.Error = describeTransfer(err)
	}
	if werr := writeJSONFrame(w, frameResult, resp); err == nil {
		err = werr
	}
	return p.Done, err
}

// describeTransfer is one line for a failed import or export.
func describeTransfer(err error) string {
	switch {
	case errors.Is(err, store.ErrOverQuota):
		return "the account's quota is used up (see kreide user quota)"
	case errors.Is(err, context.Canceled):
		return "interrupted"
	}
	return err.Error()
}

// CLI side.

// dial connects to serve's control socket; the error wraps errNoServer when
// nothing listens there.
func dial(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
			return nil, fmt.Errorf("%w (%v)", errNoServer, err)
		case errors.Is(err, os.ErrPermission):
			return nil, fmt.Errorf("cannot use the control socket %s: permission denied; run this command as the user kreide serve runs as", path)
		}
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return conn, nil
}

// withAccount runs a streaming command: through serve when it runs (socket
// gets the connection after the account unlocked), otherwise on the data
// dir opened here (direct gets the unlocked account).
func withAccount(ctx context.Context, cfg *config.Config, req Request,
	socket func(conn net.Conn, r *bufio.Reader) error, direct func(a *store.Account) error) error {
	path := SocketPath(cfg.DataDir)
	giveUp := time.Now().Add(10 * time.Second)
	for {
		conn, err := dial(ctx, path)
		if err == nil {
			defer conn.Close()
			stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
			defer stop()
			if err := writeJSONLine(conn, req); err != nil {
				return fmt.Errorf("sending the command to kreide serve: %w", err)
			}
			r := bufio.NewReaderSize(conn, 64<<10)
			line, err := r.ReadBytes('\n')
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("no answer from kreide serve (%v)", err)
			}
			var resp Response
			if err := json.Unmarshal(line, &resp); err != nil {
				return fmt.Errorf("unreadable answer from kreide serve: %w", err)
			}
			if resp.Error != "" {
				return errors.New(resp.Error)
			}
			err = socket(conn, r)
			if err != nil && ctx.Err() != nil {
				return fmt.Errorf("interrupted: %w", err)
			}
			return err
		}
		if !errors.Is(err, errNoServer) {
			return err
		}
		if _, err := os.Stat(cfg.DataDir); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("data dir %s does not exist: is -config right? (kreide serve creates it on first start)", cfg.DataDir)
		}
		dir, err := OpenDirectory(ctx, cfg)
		if err == nil {
			defer dir.Close()
			a, err := unlock(ctx, dir, req)
			if err != nil {
				return errors.New(describe(req, err))
			}
			defer a.Close()
			return direct(a)
		}
		if !errors.Is(err, store.ErrDataDirInUse) {
			return err
		}
		if time.Now().After(giveUp) {
			return fmt.Errorf("data dir %s is in use by another kreide process, and nothing answers on %s: wait for the other command to finish, or restart kreide serve", cfg.DataDir, path)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Import runs an import into the account address: run gets a sink that
// stores the items, through serve when it runs, otherwise directly. The
// error is fatal (not unlocked, quota, interrupted); the items' own
// outcomes go to run's report.
func Import(ctx context.Context, cfg *config.Config, address, password string, run func(ctx context.Context, sink portability.Sink) error) error {
	req := Request{Op: OpImport, Address: address, Password: password}
	return withAccount(ctx, cfg, req,
		func(conn net.Conn, r *bufio.Reader) error {
			sink := newRemoteSink(conn, r)
			return run(ctx, sink)
		},
		func(a *store.Account) error {
			err := run(ctx, portability.NewStoreSink(a))
			if errors.Is(err, store.ErrOverQuota) {
				return errors.New(describeTransfer(err))
			}
			return err
		})
}

// Export writes the tar stream of the account address to w, through serve
// when it runs, otherwise directly; progress is called now and then.
func Export(ctx context.Context, cfg *config.Config, address, password string, w io.Writer, progress func(portability.Progress)) error {
	if progress == nil {
		progress = func(portability.Progress) {}
	}
	req := Request{Op: OpExport, Address: address, Password: password}
	return withAccount(ctx, cfg, req,
		func(conn net.Conn, r *bufio.Reader) error {
			fr := &frameReader{r: r}
			for {
				t, payload, err := fr.read()
				if err != nil {
					return fmt.Errorf("kreide serve stopped answering: %w", err)
				}
				switch t {
				case frameData:
					if _, err := w.Write(payload); err != nil {
						return err
					}
				case frameProgress:
					var p portability.Progress
					if json.Unmarshal(payload, &p) == nil {
						progress(p)
					}
				case frameResult:
					var resp Response
					if err := json.Unmarshal(payload, &resp); err != nil {
						return fmt.Errorf("unreadable answer from kreide serve: %w", err)
					}
					if resp.Error != "" {
						return errors.New(resp.Error)
					}
					return nil
				default:
					return fmt.Errorf("unexpected frame %q from kreide serve", t)
				}
			}
		},
		func(a *store.Account) error {
			err := portability.Export(ctx, a, w, progress)
			if err != nil {
				return errors.New(describeTransfer(err))
			}
			return nil
		})
}

// remoteSink sends items to serve and hands serve's outcomes to their done
// functions.
type remoteSink struct {
	conn net.Conn
	w    *bufio.Writer
	buf  []byte

	mu      sync.Mutex
	pending []func(error)
	fatal   error
	final   chan struct{} // closed when the outcomes end
}

func newRemoteSink(conn net.Conn, r *bufio.Reader) *remoteSink {
	s := &remoteSink{conn: conn, w: bufio.NewWriterSize(conn, 64<<10), buf: make([]byte, 64<<10), final: make(chan struct{})}
	go s.readAcks(&frameReader{r: r})
	return s
}

func (s *remoteSink) readAcks(fr *frameReader) {
	defer close(s.final)
	// Items sent but not answered: after serve's final answer they were
	// not imported (serve stops at a fatal error); after a lost connection
	// nobody knows.
	failAs := func(prefix string, err error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.fatal == nil {
			s.fatal = portability.FatalError(err)
		}
		for _, done := range s.pending {
			done(errors.New(prefix + err.Error()))
		}
		s.pending = nil
	}
	fail := func(err error) { failAs("outcome unknown: ", err) }
	for {
		t, payload, err := fr.read()
		if err != nil {
			fail(fmt.Errorf("kreide serve stopped answering: %w", err))
			return
		}
		switch t {
		case frameAck:
			var a ack
			if err := json.Unmarshal(payload, &a); err != nil {
				fail(fmt.Errorf("unreadable answer from kreide serve: %w", err))
				return
			}
			s.mu.Lock()
			if len(s.pending) == 0 {
				s.mu.Unlock()
				fail(errors.New("kreide serve answered an item never sent"))
				return
			}
			done := s.pending[0]
			s.pending = s.pending[1:]
			var itemErr error
			if a.Error != "" {
				itemErr = errors.New(a.Error)
			}
			if a.Fatal && s.fatal == nil {
				s.fatal = portability.FatalError(itemErr)
			}
			s.mu.Unlock()
			done(itemErr)
		case frameResult:
			var resp Response
			if err := json.Unmarshal(payload, &resp); err != nil {
				fail(fmt.Errorf("unreadable answer from kreide serve: %w", err))
				return
			}
			if resp.Error != "" {
				failAs("not imported: ", errors.New(resp.Error))
			}
			return
		default:
			fail(fmt.Errorf("unexpected frame %q from kreide serve", t))
			return
		}
	}
}

func (s *remoteSink) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fatal
}

// broken is the error for a failed write: serve's reason when it gave one.
func (s *remoteSink) broken(err error) error {
	select {
	case <-s.final:
	case <-time.After(5 * time.Second):
	}
	if ferr := s.err(); ferr != nil {
		return ferr
	}
	return portability.FatalError(fmt.Errorf("kreide serve stopped answering: %w", err))
}

func (s *remoteSink) Put(ctx context.Context, it *portability.Item, r io.Reader, done func(error)) error {
	if err := s.err(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := json.Marshal(it)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.pending = append(s.pending, done)
	s.mu.Unlock()
	if err := writeFrame(s.w, frameItem, data); err != nil {
		return s.broken(err)
	}
	for {
		n, rerr := r.Read(s.buf)
		if n > 0 {
			if err := writeFrame(s.w, frameData, s.buf[:n]); err != nil {
				return s.broken(err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if err := writeFrame(s.w, frameAbort, []byte("reading "+it.Source+": "+rerr.Error())); err != nil {
				return s.broken(err)
			}
			if err := s.w.Flush(); err != nil {
				return s.broken(err)
			}
			return nil
		}
	}
	if err := writeFrame(s.w, frameEnd, nil); err != nil {
		return s.broken(err)
	}
	if err := s.w.Flush(); err != nil {
		return s.broken(err)
	}
	return nil
}

func (s *remoteSink) Close() error {
	if s.err() == nil {
		if err := writeFrame(s.w, frameQuit, nil); err == nil {
			s.w.Flush()
		}
	}
	<-s.final
	return s.err()
}
