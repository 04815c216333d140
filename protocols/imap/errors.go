package imap

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"runtime/debug"
	"time"

	"github.com/emersion/go-imap/v2"

	"kreide/store"
)

// Response codes go-imap has no constant for.
const (
	codeUseAttr  imap.ResponseCode = "USEATTR" // RFC 6154
	codeReadOnly imap.ResponseCode = "READ-ONLY"
)

func no(code imap.ResponseCode, text string) *imap.Error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
}

func bad(text string) *imap.Error {
	return &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: text}
}

var (
	errNoMailbox  = no(imap.ResponseCodeNonExistent, "No such mailbox")
	errTryCreate  = no(imap.ResponseCodeTryCreate, "No such mailbox")
	errReadOnly   = no(codeReadOnly, "Mailbox is read-only")
	errNoSelected = bad("No mailbox selected")
)

// mapErr turns a store error into the IMAP reply a user should see
// (RFC 5530 response codes). Unexpected errors are logged with a reference
// the user can quote; their text never reaches the client.
func (s *session) mapErr(err error) error {
	var imapErr *imap.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &imapErr):
		return err
	case errors.Is(err, store.ErrOverQuota):
		return no(imap.ResponseCodeOverQuota, "Mailbox is over quota")
	case errors.Is(err, store.ErrNotFound):
		return errNoMailbox
	case errors.Is(err, store.ErrExists):
		return no(imap.ResponseCodeAlreadyExists, "Mailbox already exists")
	case errors.Is(err, store.ErrPermanentInbox):
		return no(imap.ResponseCodeCannot, "INBOX cannot be deleted")
	case errors.Is(err, store.ErrInvalid):
		return no(imap.ResponseCodeCannot, "Invalid name or argument")
	case errors.Is(err, store.ErrAuthFailed):
		return no(imap.ResponseCodeAuthenticationFailed, "Authentication failed")
	case errors.Is(err, store.ErrClosed), errors.Is(err, store.ErrLocked), errors.Is(err, context.Canceled):
		return no(imap.ResponseCodeUnavailable, "Try again later")
	case store.IsNoSpace(err):
		s.srv.log.Error("imap: disk full", "user", s.login(), "err", err)
		return no(imap.ResponseCodeUnavailable, "The server is out of disk space, try again later")
	}
	ref := errRef()
	s.srv.log.Error("imap: store error", "ref", ref, "user", s.login(), "err", err)
	return no(imap.ResponseCodeServerBug, "Internal error, reference "+ref)
}

// guard recovers from a panic in a command handler: the process survives,
// the client gets NO [SERVERBUG], the stack goes to the log. Use as
// defer s.guard("CMD", time.Now(), &err). It also reports the command and
// its duration to Options.OnCommand (metrics).
func (s *session) guard(cmd string, start time.Time, err *error) {
	v := recover()
	if v == nil {
		if f := s.srv.o.OnCommand; f != nil {
			f(cmd, time.Since(start), *err == nil)
		}
		return
	}
	ref := errRef()
	s.srv.log.Error("imap: panic", "ref", ref, "cmd", cmd, "user", s.login(), "panic", v, "stack", string(debug.Stack()))
	*err = no(imap.ResponseCodeServerBug, "Internal error, reference "+ref)
}

func errRef() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
