package smtp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"kreide/store"
)

// Message submission (RFC 6409; ports 587 and 465). Only an authenticated
// account may send, only as one of its addresses (login or alias), both in
// MAIL FROM and in the From (and Sender) field. The submitted message is
// received once into an encrypted spool; local recipients get it through
// Directory.Deliver, remote ones through the outbound queue, after it was
// DKIM-signed for the From domain.

var errFromNotYours = smtpErr(553, 5, 7, 1, "From field address is not one of your addresses")

func (ss *session) submissionMail(from string) error {
	if ss.account == nil {
		return errAuthRequired
	}
	if from == "" {
		return errNullSender
	}
	addr, err := store.NormalizeAddress(from)
	if err != nil {
		return errBadSender
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	if !ss.owns(ctx, addr) {
		ss.log.Info("MAIL FROM refused: not an address of the account")
		return errNotYourSender
	}
	ss.from = addr
	return nil
}

// owns reports whether addr is the authenticated account's login or alias.
func (ss *session) owns(ctx context.Context, addr string) bool {
	info, err := ss.s.o.Dir.Lookup(ctx, addr)
	return err == nil && info.ID == ss.account.ID()
}

// checkAuthorFields enforces that From (and Sender, if present) name only
// addresses of the account.
func (ss *session) checkAuthorFields(ctx context.Context, h *header) ([]string, error) {
	froms, err := h.fromAddresses()
	if err != nil {
		return nil, smtpErr(550, 5, 6, 0, "Message must have exactly one valid From field")
	}
	addrs := append([]string(nil), froms...)
	for _, f := range h.all("Sender") {
		list, err := parseAddressList(f.value())
		if err != nil {
			return nil, smtpErr(550, 5, 6, 0, "Malformed Sender field")
		}
		addrs = append(addrs, list...)
	}
	for _, a := range addrs {
		if !ss.owns(ctx, a) {
			ss.log.Info("From field refused: not an address of the account")
			return nil, errFromNotYours
		}
	}
	return froms, nil
}

func (ss *session) submissionData(r io.Reader) error {
	ctx, cancel := ss.ctx()
	defer cancel()
	if ss.account == nil {
		return errAuthRequired
	}
	br := bufio.NewReaderSize(r, 32<<10)
	h, err := readHeader(br)
	if err != nil {
		return transferError(ss, err)
	}
	if h.looping() {
		return errLoop
	}
	froms, err := ss.checkAuthorFields(ctx, h)
	if err != nil {
		return err
	}
	var remote []store.QueueRecipient
	for _, rc := range ss.rcpts {
		if rc.account == "" {
			remote = append(remote, store.QueueRecipient{Addr: rc.addr, State: store.RcptPending})
		}
	}
	q := ss.s.o.Dir.Queue()
	spool := q.NewScratch()
	if len(remote) > 0 {
		spool = q.NewSpool()
	}
	defer spool.Close()

	// RFC 6409 section 8: the submission server may add Date and Message-ID,
	// and removes Bcc so blind recipients stay blind.
	id := newID()
	var prefix strings.Builder
	prefix.WriteString(ss.received(id, ""))
	if !h.has("Date") {
		fmt.Fprintf(&prefix, "Date: %s\r\n", time.Now().Format(time.RFC1123Z))
	}
	if !h.has("Message-ID") {
		fmt.Fprintf(&prefix, "Message-ID: <%s@%s>\r\n", id, ss.s.o.Hostname)
	}
	if _, err := io.WriteString(spool, prefix.String()); err != nil {
		return transferError(ss, err)
	}
	if err := h.writeTo(spool, func(f field) bool { return !f.is("Bcc") }); err != nil {
		return transferError(ss, err)
	}
	if _, err := io.Copy(spool, br); err != nil {
		return transferError(ss, err)
	}
	if err := spool.Finish(); err != nil {
		return transferError(ss, err)
	}

	// Signed for local recipients too: they see the same message a remote
	// one does, and a copy forwarded on keeps a valid signature.
	sigs, err := ss.s.dkimSign(ctx, domainOf(froms[0]), spool.Reader)
	if err != nil {
		ss.log.Error("dkim signing", "err", err)
		return errTempLocal
	}
	// Remote recipients first: once the queue holds the message, a local
	// failure is reported by DSN rather than by failing the transaction
	// (which would make the client send the remote copies twice).
	if len(remote) > 0 {
		m := &store.QueueMessage{From: ss.from, Account: ss.account.ID(), Recipients: remote, Prefix: sigs, UTF8: ss.needsUTF8(h, remote)}
		if err := q.Add(ctx, m, spool); err != nil {
			ss.log.Error("queue", "err", err)
			if store.IsNoSpace(err) {
				return errNoSpace
			}
			return errTempLocal
		}
		ss.log.Info("queued", "id", m.ID, "recipients", len(remote), "size", m.Size)
		ss.s.queue.wake()
	}
	rcpts, addrs := localRecipients(ss.rcpts, false)
	if len(rcpts) > 0 {
		body, err := spool.Reader()
		if err != nil {
			return transferError(ss, err)
		}
		errs, err := ss.s.o.Dir.Deliver(ctx, rcpts, io.MultiReader(bytes.NewReader(sigs), body))
		if err != nil && len(remote) == 0 {
			ss.log.Warn("local delivery failed", "err", err)
			return deliverError(err)
		}
		if err != nil {
			for i := range errs {
				if errs[i] == nil {
					errs[i] = err
				}
			}
		}
		ss.bounceFailedLocal(ctx, rcpts, addrs, errs, h)
		ss.log.Info("delivered locally", "id", id, "recipients", len(rcpts))
	}
	if ss.s.o.SaveSent {
		ss.saveSent(ctx, spool)
	}
	return nil
}

// needsUTF8 reports whether the next hop must support SMTPUTF8 (RFC 6531):
// only when the client asked for it and an address or the header is not
// ASCII, so a client that always says SMTPUTF8 can still reach old servers.
func (ss *session) needsUTF8(h *header, rcpts []store.QueueRecipient) bool {
	if !ss.mailOpts.UTF8 {
		return false
	}
	if !isASCII(ss.from) || !isASCII(string(h.bytes())) {
		return true
	}
	for _, r := range rcpts {
		if !isASCII(r.Addr) {
			return true
		}
	}
	return false
}

// saveSent files a copy in the sender's Sent mailbox. The message is
// already accepted, so a failure here is only logged.
func (ss *session) saveSent(ctx context.Context, spool *store.Spool) {
	mb, err := ss.account.MailboxByRole(ctx, store.RoleSent)
	if err != nil {
		ss.log.Warn("no Sent mailbox", "err", err)
		return
	}
	body, err := spool.Reader()
	if err == nil {
		_, err = ss.account.Append(ctx, mb.ID, body, []string{store.FlagSeen}, time.Now())
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		ss.log.Warn("saving Sent copy", "err", err)
	}
}
