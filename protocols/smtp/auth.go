package smtp

import (
	"context"
	"errors"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"kreide/store"
)

// maxAuthFails is how many failed AUTH commands a connection may make.
const maxAuthFails = 3

// authAllowed reports whether this connection may authenticate: submission
// only, over TLS, or in clear where Options.AllowPlaintext permits (loopback).
func (ss *session) authAllowed() bool {
	if ss.mode != modeSubmission {
		return false
	}
	return ss.tls != nil || ss.s.o.AllowPlaintext(ss.conn.Conn())
}

// AuthMechanisms lists PLAIN and LOGIN where AUTH is allowed, nothing elsewhere
// (so EHLO does not advertise AUTH in clear text).
func (ss *session) AuthMechanisms() []string {
	if !ss.authAllowed() {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

// Auth starts a SASL exchange. Passwords and app passwords with the smtp
// scope are accepted (store.Login checks the scope).
func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.mode != modeSubmission {
		return nil, gosmtp.ErrAuthUnsupported
	}
	if !ss.authAllowed() {
		return nil, errEncryptionReq
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return smtpErr(535, 5, 7, 8, "Authorization identity must equal the user name")
			}
			return ss.login(username, password)
		}), nil
	case sasl.Login:
		return &loginServer{auth: ss.login}, nil
	}
	return nil, gosmtp.ErrAuthUnknownMechanism
}

func (ss *session) login(user, pass string) error {
	if ss.account != nil {
		return smtpErr(503, 5, 5, 1, "Already authenticated")
	}
	// Both mechanisms (PLAIN, LOGIN) end here; the client's address lets
	// Directory.Login slow down failed logins per client.
	ctx, cancel := context.WithTimeout(store.WithRemote(ss.s.ctx, ss.conn.Conn().RemoteAddr()), time.Minute)
	defer cancel()
	a, err := ss.s.o.Dir.Login(ctx, user, pass, store.ScopeSMTP)
	if err != nil {
		if errors.Is(err, store.ErrAuthFailed) {
			ss.log.Info("authentication failed", "user", user)
			if ss.authFails++; ss.authFails >= maxAuthFails {
				ss.closeSoon()
				return smtpErr(421, 4, 7, 8, "Too many failed authentications, closing connection")
			}
			return gosmtp.ErrAuthFailed
		}
		ss.log.Error("authentication", "err", err)
		return smtpErr(454, 4, 7, 0, "Temporary authentication failure")
	}
	ss.account = a
	ss.log = ss.log.With("account", a.ID())
	return nil
}

// loginServer is the server side of the LOGIN mechanism
// (draft-murchison-sasl-login): the client answers "Username:" and
// "Password:" challenges. An initial response is taken as the user name.
type loginServer struct {
	auth  func(user, pass string) error
	user  string
	state int
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.state {
	case 0:
		l.state = 1
		if response != nil {
			l.user = string(response)
			l.state = 2
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user = string(response)
		l.state = 2
		return []byte("Password:"), false, nil
	case 2:
		l.state = 3
		return nil, true, l.auth(l.user, string(response))
	}
	return nil, false, sasl.ErrUnexpectedClientResponse
}
