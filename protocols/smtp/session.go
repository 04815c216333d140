package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"kreide/protocols/connlimit"
	"kreide/store"
)

// Replies the sessions give. Codes follow RFC 5321 and the enhanced codes RFC 3463.
var (
	errAuthRequired  = smtpErr(530, 5, 7, 0, "Authentication required")
	errEncryptionReq = smtpErr(538, 5, 7, 11, "Encryption required for requested authentication mechanism")
	errNoSuchUser    = smtpErr(550, 5, 1, 1, "No such user here")
	errRelayDenied   = smtpErr(550, 5, 7, 1, "Relaying denied: this server only accepts mail for its own domains")
	errBadRcpt       = smtpErr(501, 5, 1, 3, "Bad recipient address syntax")
	errBadSender     = smtpErr(501, 5, 1, 7, "Bad sender address syntax")
	errNotYourSender = smtpErr(553, 5, 7, 1, "Sender address is not one of your addresses")
	errTooManyFails  = smtpErr(421, 4, 7, 0, "Too many invalid recipients, closing connection")
	errNullSender    = smtpErr(553, 5, 7, 1, "A null sender is not allowed for submission")
	errTempLocal     = smtpErr(451, 4, 3, 0, "Temporary local problem, try again later")
	errMailboxFull   = smtpErr(452, 4, 2, 2, "Mailbox full")
	errNoSpace       = smtpErr(452, 4, 3, 1, "Insufficient system storage, try again later")
	errUTF8Needed    = smtpErr(553, 5, 6, 7, "Non-ASCII address requires SMTPUTF8")
	errShuttingDown  = smtpErr(421, 4, 3, 2, "Server shutting down, try again later")
	errLoop          = smtpErr(554, 5, 4, 6, "Routing loop detected: too many Received fields")
)

func smtpErr(code, a, b, c int, msg string) *gosmtp.SMTPError {
	return &gosmtp.SMTPError{Code: code, EnhancedCode: gosmtp.EnhancedCode{a, b, c}, Message: msg}
}

// rcpt is one accepted recipient.
type rcpt struct {
	addr    string // normalized
	account string // local account id; "" for remote recipients
}

// session is one SMTP connection's state, from EHLO (and again after
// STARTTLS) to logout. Sessions of both modes share it; the mode decides the
// rules (inbound.go, submission.go).
type session struct {
	s    *Server
	mode mode
	conn *gosmtp.Conn
	log  *slog.Logger
	ip   net.IP
	helo string
	tls  *tls.ConnectionState

	account *store.Account // submission, after AUTH

	from      string
	mailOpts  gosmtp.MailOptions
	rcpts     []rcpt
	failed    int // rejected RCPTs on this connection
	authFails int
}

var _ gosmtp.AuthSession = (*session)(nil)

func (s *Server) newSession(m mode, c *gosmtp.Conn) *session {
	ss := &session{s: s, mode: m, conn: c, helo: c.Hostname()}
	if ta, ok := c.Conn().RemoteAddr().(*net.TCPAddr); ok {
		ss.ip = ta.IP
	}
	if st, ok := c.TLSConnectionState(); ok {
		ss.tls = &st
	}
	ss.log = s.log.With("mode", m.String(), "remote", connlimit.Host(c.Conn().RemoteAddr()))
	return ss
}

func (ss *session) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(ss.s.ctx, 30*time.Minute)
}

// dataIdle is how long a client may send nothing in the middle of a message
// (RFC 5321 section 4.5.3.2 suggests 3 minutes per data block).
const dataIdle = 5 * time.Minute

// progressReader renews the connection's read deadline on every read, so a
// large message on a slow line is limited by stalls, not by its total time.
type progressReader struct {
	r io.Reader
	c net.Conn
}

func (p progressReader) Read(b []byte) (int, error) {
	p.c.SetReadDeadline(time.Now().Add(dataIdle))
	return p.r.Read(b)
}

// Reset forgets the current transaction (RSET, or after DATA).
func (ss *session) Reset() {
	ss.from = ""
	ss.mailOpts = gosmtp.MailOptions{}
	ss.rcpts = nil
}

// Logout ends the session.
func (ss *session) Logout() error {
	if ss.account != nil {
		ss.account.Close()
		ss.account = nil
	}
	return nil
}

// Mail starts a transaction.
func (ss *session) Mail(from string, opts *gosmtp.MailOptions) error {
	if opts != nil {
		ss.mailOpts = *opts
	}
	if !ss.mailOpts.UTF8 && !isASCII(from) {
		return errUTF8Needed
	}
	if ss.mode == modeSubmission {
		return ss.submissionMail(from)
	}
	if from != "" {
		addr, err := store.NormalizeAddress(from)
		if err != nil {
			return errBadSender
		}
		from = addr
	}
	ss.from = from
	return nil
}

// Rcpt adds a recipient: an address of this server, or for an authenticated
// submission any address.
func (ss *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if ss.failed >= ss.s.o.MaxFailedRcpts {
		ss.closeSoon()
		return errTooManyFails
	}
	if ss.mode == modeSubmission && ss.account == nil {
		return errAuthRequired
	}
	if !ss.mailOpts.UTF8 && !isASCII(to) {
		ss.failed++
		return errUTF8Needed
	}
	addr, err := store.NormalizeAddress(to)
	if err != nil {
		ss.failed++
		return errBadRcpt
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	domain := addr[strings.LastIndexByte(addr, '@')+1:]
	if !ss.s.o.Dir.ServesDomain(ctx, domain) {
		if ss.mode == modeMX {
			ss.failed++
			ss.log.Info("relay denied", "helo", ss.helo)
			return errRelayDenied
		}
		ss.rcpts = append(ss.rcpts, rcpt{addr: addr})
		return nil
	}
	info, err := ss.s.o.Dir.Lookup(ctx, addr)
	if errors.Is(err, store.ErrNotFound) {
		ss.failed++
		return errNoSuchUser
	}
	if err != nil {
		ss.log.Error("recipient lookup", "err", err)
		return errTempLocal
	}
	ss.rcpts = append(ss.rcpts, rcpt{addr: addr, account: info.ID})
	return nil
}

// closeSoon ends a connection that misbehaves: the reply to the current
// command is still written, then the connection closes.
func (ss *session) closeSoon() {
	nc := ss.conn.Conn()
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if lc, ok := nc.(*limitedConn); ok {
		lc.closeAfterWrite.Store(true)
	}
}

// Data receives the message.
func (ss *session) Data(r io.Reader) error {
	if !ss.s.enter() {
		return errShuttingDown
	}
	defer ss.s.inflight.Done()
	r = progressReader{r: r, c: ss.conn.Conn()}
	if ss.mode == modeSubmission {
		return ss.submissionData(r)
	}
	return ss.inboundData(r)
}

// localRecipients returns the store recipients of the local rcpts, one per
// account (an account named twice, by login and alias, gets one copy).
func localRecipients(rcpts []rcpt, junk bool) ([]store.Recipient, []string) {
	var out []store.Recipient
	var addrs []string
	seen := map[string]bool{}
	for _, r := range rcpts {
		if r.account == "" || seen[r.account] {
			continue
		}
		seen[r.account] = true
		out = append(out, store.Recipient{AccountID: r.account, Junk: junk})
		addrs = append(addrs, r.addr)
	}
	return out, addrs
}

// deliverError maps a store error of a whole delivery to a reply.
func deliverError(err error) error {
	var se *gosmtp.SMTPError
	switch {
	case errors.As(err, &se):
		return se
	case errors.Is(err, store.ErrOverQuota):
		return errMailboxFull
	case store.IsNoSpace(err):
		return errNoSpace
	default:
		return errTempLocal
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
