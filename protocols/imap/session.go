package imap

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"kreide/store"
)

// maxLoginFailures is how many failed logins a connection may make before
// it is dropped (the store rate-limits password hashing on top).
const maxLoginFailures = 3

// session is one connection's state. imapserver calls its methods one at a
// time, except Idle, which runs while the connection only waits for DONE.
type session struct {
	srv    *Server
	conn   *imapserver.Conn
	fc     *frontConn
	tc     *trackedConn
	ctx    context.Context
	cancel context.CancelFunc

	acct     *store.Account // nil until logged in
	watch    *store.Watcher
	failures int

	sel       *view    // selected mailbox, or nil
	searchRes []uint32 // SEARCHRES "$" (RFC 5182): UIDs

	// imapserver may end the connection (and call Close) while Idle still
	// runs; Close waits for it.
	idleMu   sync.Mutex
	closing  bool
	idleDone chan struct{}
}

var (
	_ imapserver.SessionIMAP4rev2      = (*session)(nil)
	_ imapserver.SessionAppendLimit    = (*session)(nil)
	_ imapserver.SessionUnauthenticate = (*session)(nil)
)

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	fc, ok := c.NetConn().(*frontConn)
	if !ok {
		return nil, nil, errors.New("imap: connection not accepted by this server")
	}
	tc := fc.tc
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.sessions.Add(1) // under s.mu: Close's Wait comes after closed is set
	}
	s.mu.Unlock()
	if closed {
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBye, Text: "Server shutting down"}
	}
	// The client's address goes into every store call of the session, so
	// Directory.Login can slow down failed logins per client.
	ctx, cancel := context.WithCancel(store.WithRemote(context.Background(), tc.RemoteAddr()))
	return &session{srv: s, conn: c, fc: fc, tc: tc, ctx: ctx, cancel: cancel}, nil, nil
}

func (s *session) login() string {
	if s.acct == nil {
		return ""
	}
	return s.acct.Login()
}

// Close ends the session: imapserver calls it once when the connection ends.
func (s *session) Close() error {
	s.cancel()
	s.idleMu.Lock()
	s.closing = true
	idle := s.idleDone
	s.idleMu.Unlock()
	if idle != nil {
		<-idle
	}
	s.logout()
	s.srv.sessions.Done()
	return nil
}

func (s *session) logout() {
	s.sel = nil
	s.searchRes = nil
	if s.acct == nil {
		return
	}
	s.watch.Close()
	s.srv.perUser.Release(s.acct.ID())
	s.acct.Close()
	s.acct, s.watch = nil, nil
	s.tc.authed.Store(false)
}

// Login serves LOGIN and AUTHENTICATE PLAIN. frontConn refuses both without
// TLS (unless Options.AllowPlaintext allowed this peer) before the password
// is read; this checks again.
func (s *session) Login(username, password string) (err error) {
	defer s.guard("LOGIN", time.Now(), &err)
	if s.acct != nil {
		return bad("Already logged in")
	}
	if !s.fc.canAuth() {
		return no(imap.ResponseCodePrivacyRequired, "TLS is required to authenticate")
	}
	a, err := s.srv.o.Dir.Login(s.ctx, username, password, store.ScopeIMAP)
	if err != nil {
		if !errors.Is(err, store.ErrAuthFailed) {
			return s.mapErr(err)
		}
		s.failures++
		s.srv.log.Info("imap: login failed", "remote", s.tc.ip)
		if s.failures >= maxLoginFailures {
			// Not BYE: AUTHENTICATE holds the response writer here. The
			// NO goes out first.
			time.AfterFunc(200*time.Millisecond, func() { s.tc.Close() })
		}
		return imapserver.ErrAuthFailed
	}
	if !s.srv.perUser.Acquire(a.ID()) {
		a.Close()
		return no(imap.ResponseCodeLimit, "Too many connections to this account")
	}
	s.acct = a
	s.watch = a.Watch()
	s.tc.authed.Store(true)
	return nil
}

// Unauthenticate serves UNAUTHENTICATE (RFC 8437).
func (s *session) Unauthenticate() error {
	s.logout()
	return nil
}

// AppendLimit is the APPENDLIMIT (RFC 7889). Before login it is 0, so that
// imapserver refuses an APPEND literal instead of reading it.
func (s *session) AppendLimit() uint32 {
	if s.acct == nil {
		return 0
	}
	return s.srv.appendLimit()
}

// Namespace serves NAMESPACE (RFC 2342): one personal namespace.
func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: delim}}}, nil
}

// Poll runs after every command: it reads what others changed and tells the
// client, keeping EXPUNGEs back when imapserver says they are not allowed.
// Its errors end the connection, so only write errors are returned.
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) (err error) {
	defer s.guard("poll", time.Now(), &err)
	if s.sel == nil {
		return nil
	}
	select {
	case <-s.watch.C:
		s.sync()
	default:
	}
	return s.sel.flush(s, w, allowExpunge)
}

// sync reads the change log into the selected view; failures are logged
// and retried at the next wakeup.
func (s *session) sync() {
	if err := s.sel.sync(s.ctx, s.acct); err != nil && s.ctx.Err() == nil {
		s.srv.log.Warn("imap: reading changes", "user", s.login(), "err", err)
	}
}

// Idle serves IDLE (RFC 2177): changes made by other sessions or by
// delivery wake the account's watcher, and are sent at once.
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) (err error) {
	defer s.guard("IDLE", time.Now(), &err)
	s.idleMu.Lock()
	if s.closing {
		s.idleMu.Unlock()
		return nil
	}
	done := make(chan struct{})
	s.idleDone = done
	s.idleMu.Unlock()
	defer close(done)
	s.tc.setIdle(true)
	defer s.tc.setIdle(false)
	s.fc.idle.Store(true) // updates go out at once
	defer s.fc.idle.Store(false)
	if s.acct == nil {
		<-stop
		return nil
	}
	if err := s.Poll(w, true); err != nil {
		return err
	}
	for {
		select {
		case <-stop:
			return nil
		case <-s.ctx.Done():
			return nil
		case <-s.watch.C:
			if s.sel == nil {
				continue
			}
			s.sync()
			if err := s.sel.flush(s, w, true); err != nil {
				return err
			}
		}
	}
}
