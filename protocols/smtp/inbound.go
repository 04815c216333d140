package smtp

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	gosmtp "github.com/emersion/go-smtp"

	"kreide/store"
)

// Inbound delivery (port 25). The message is never held whole in memory:
//
//  1. The header block (at most maxHeaderBytes) is read and parsed; the From
//     domain is known, so SPF and the DMARC lookup start.
//  2. Header and body stream at once into a DKIM verifier goroutine (through
//     a pipe) and into an encrypted scratch spool (store.Queue.NewScratch:
//     random in-memory key, file unlinked at creation; one 64 KiB chunk in
//     memory). Forged Authentication-Results fields naming this host are
//     left out of the spool (RFC 8601 section 5).
//  3. At the end of DATA every check is done: DMARC reject answers 550 and
//     nothing is stored; otherwise the Received and Authentication-Results
//     fields are prepended and the spool is streamed once into
//     Directory.Deliver, to INBOX or (quarantine) Junk.
//  4. 250 is sent only after Deliver returns, when every copy is durable.
//
// Why a spool rather than teeing straight into Deliver: the
// Authentication-Results field goes on top of the message but its DKIM and
// DMARC results are known only after the last body byte, and the stored
// message is written once, front to back.

var errDMARCFrom = smtpErr(550, 5, 7, 1, "Message must have exactly one From field with one address (RFC 5322, RFC 7489 section 6.6.1)")

type dkimOutcome struct {
	verifs []*dkim.Verification
	err    error
}

func (ss *session) inboundData(r io.Reader) error {
	ctx, cancel := ss.ctx()
	defer cancel()
	br := bufio.NewReaderSize(r, 32<<10)
	h, err := readHeader(br)
	if err != nil {
		return transferError(ss, err)
	}
	if h.looping() {
		return errLoop
	}
	froms, err := h.fromAddresses()
	if err != nil || len(froms) != 1 {
		return errDMARCFrom
	}
	fromDomain := domainOf(froms[0])
	helo := ss.conn.Hostname()
	checks := startChecks(ctx, ss.s.o.Resolver, ss.ip, helo, ss.from, fromDomain)

	pr, pw := io.Pipe()
	dkimDone := make(chan dkimOutcome, 1)
	go func() {
		verifs, err := dkim.VerifyWithOptions(pr, &dkim.VerifyOptions{LookupTXT: lookupTXTFunc(ctx, ss.s.o.Resolver), MaxVerifications: 5})
		io.Copy(io.Discard, pr) // the verifier may stop early; the writer must never block
		dkimDone <- dkimOutcome{verifs, err}
	}()
	spool := ss.s.o.Dir.Queue().NewScratch()
	defer spool.Close()
	abort := func(err error) error {
		pw.CloseWithError(err)
		<-dkimDone
		checks.wait()
		return err
	}
	if err := h.writeTo(pw, nil); err != nil {
		return abort(transferError(ss, err))
	}
	if err := h.writeTo(spool, func(f field) bool { return !ss.forgedAuthResults(f) }); err != nil {
		return abort(transferError(ss, err))
	}
	if _, err := io.Copy(io.MultiWriter(spool, pw), br); err != nil {
		return abort(transferError(ss, err))
	}
	pw.Close()
	dk := <-dkimDone
	if err := spool.Finish(); err != nil {
		checks.wait()
		return transferError(ss, err)
	}
	v := checks.evaluate(dk.verifs, dk.err)
	if v.reject != nil {
		ss.log.Info("rejected by DMARC", "from_domain", fromDomain)
		return v.reject
	}

	rcpts, addrs := localRecipients(ss.rcpts, v.junk)
	id := newID()
	forAddr := ""
	if len(addrs) == 1 {
		forAddr = addrs[0]
	}
	prefix := ss.received(id, forAddr) + authResults(ss.s.o.Hostname, v.results)
	body, err := spool.Reader()
	if err != nil {
		return transferError(ss, err)
	}
	errs, err := ss.s.o.Dir.Deliver(ctx, rcpts, io.MultiReader(strings.NewReader(prefix), body))
	if err != nil {
		ss.log.Warn("delivery failed", "err", err)
		return deliverError(err)
	}
	ss.log.Info("delivered", "id", id, "recipients", len(rcpts), "junk", v.junk, "size", spool.Size())
	ss.bounceFailedLocal(ctx, rcpts, addrs, errs, h)
	return nil
}

// forgedAuthResults reports an Authentication-Results field that claims to
// come from this host: only this host may write those.
func (ss *session) forgedAuthResults(f field) bool {
	if !f.is("Authentication-Results") {
		return false
	}
	id, _, _ := strings.Cut(f.value(), ";")
	id = strings.Fields(id + " x")[0] // authserv-id, without an optional version
	return strings.EqualFold(id, ss.s.o.Hostname)
}

// transferError turns a failure while the message streams in (the client
// vanished, the size limit, a disk error) into a reply: SMTP errors as they
// are, anything else as a temporary local problem, never as internal text.
func transferError(ss *session, err error) error {
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		return se
	}
	if store.IsNoSpace(err) {
		ss.log.Error("disk full: message refused", "err", err)
		return errNoSpace
	}
	ss.log.Info("message transfer failed", "err", err)
	return errTempLocal
}

// bounceFailedLocal reports recipients whose copy failed while others
// succeeded: the transaction got 250, so their sender gets a DSN instead.
func (ss *session) bounceFailedLocal(ctx context.Context, rcpts []store.Recipient, addrs []string, errs []error, h *header) {
	var failed []failure
	for i, err := range errs {
		if err == nil || i >= len(addrs) {
			continue
		}
		f := failure{Addr: addrs[i], Status: "5.3.0", Diagnostic: "x-local; delivery failed: local storage error"}
		if errors.Is(err, store.ErrOverQuota) {
			f.Status, f.Diagnostic = "5.2.2", "x-local; mailbox full"
		}
		ss.log.Warn("recipient copy failed", "err", err)
		failed = append(failed, f)
	}
	if len(failed) == 0 || ss.from == "" {
		return
	}
	ss.s.bounce(ctx, bounceInfo{Sender: ss.from, SenderAccount: ss.senderAccount(), Failed: failed, Headers: h.bytes(), Arrival: time.Now()})
}

func (ss *session) senderAccount() string {
	if ss.account != nil {
		return ss.account.ID()
	}
	return ""
}
