package smtp

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"kreide/store"
)

// Delivery status notifications (RFC 3464, multipart/report of RFC 6522):
// when a recipient fails for good or its retries expire, the sender gets one
// message listing the failed recipients, with the original header (not the
// body) attached as text/rfc822-headers. A local sender gets it straight
// into INBOX through Directory.Deliver; a remote sender through the queue
// with a null reverse-path, so a bounce is never bounced.

// failure is one recipient that could not be delivered.
type failure struct {
	Addr string
	// Status is the RFC 3463 code, e.g. "5.1.1".
	Status string
	// Diagnostic is "smtp; 550 5.1.1 ..." or "x-local; ...".
	Diagnostic string
	RemoteMTA  string
}

type bounceInfo struct {
	Sender        string // envelope sender to notify; "" means nobody
	SenderAccount string // its local account id, if known
	Failed        []failure
	Headers       []byte // the original header block, if available
	Arrival       time.Time
	LastAttempt   time.Time
}

// bounce sends the DSN. Errors are logged: the caller has nothing to undo.
func (s *Server) bounce(ctx context.Context, b bounceInfo) {
	if b.Sender == "" || len(b.Failed) == 0 {
		return
	}
	account := b.SenderAccount
	if account == "" {
		if info, err := s.o.Dir.Lookup(ctx, b.Sender); err == nil {
			account = info.ID
		}
	}
	domain := s.reportingDomain(ctx, b)
	msg := s.dsnMessage(b, domain)
	if account != "" {
		_, err := s.o.Dir.Deliver(ctx, []store.Recipient{{AccountID: account}}, bytes.NewReader(msg))
		if err != nil {
			s.log.Error("dsn delivery", "err", err)
		}
		return
	}
	q := s.o.Dir.Queue()
	spool := q.NewSpool()
	defer spool.Close()
	spool.Write(msg)
	if err := spool.Finish(); err != nil {
		s.log.Error("dsn spool", "err", err)
		return
	}
	m := &store.QueueMessage{Recipients: []store.QueueRecipient{{Addr: b.Sender, State: store.RcptPending}}}
	if sigs, err := s.dkimSign(ctx, domain, spool.Reader); err == nil {
		m.Prefix = sigs
	} else {
		s.log.Warn("dsn not signed", "err", err)
	}
	if err := q.Add(ctx, m, spool); err != nil {
		s.log.Error("dsn queue", "err", err)
		return
	}
	s.queue.wake()
}

// reportingDomain is the served domain the DSN comes from: that of a failed
// local recipient or of the sender, else the first served domain.
func (s *Server) reportingDomain(ctx context.Context, b bounceInfo) string {
	cands := []string{}
	for _, f := range b.Failed {
		cands = append(cands, domainOf(f.Addr))
	}
	cands = append(cands, domainOf(b.Sender))
	for _, d := range cands {
		if s.o.Dir.ServesDomain(ctx, d) {
			return d
		}
	}
	if ds, err := s.o.Dir.Domains(ctx); err == nil && len(ds) > 0 {
		return ds[0]
	}
	return s.o.Hostname
}

func (s *Server) dsnMessage(b bounceInfo, domain string) []byte {
	now := time.Now()
	id := newID()
	boundary := "kreide-dsn-" + id
	var w bytes.Buffer
	fmt.Fprintf(&w, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", domain)
	fmt.Fprintf(&w, "To: <%s>\r\n", b.Sender)
	w.WriteString("Subject: Undelivered Mail Returned to Sender\r\n")
	fmt.Fprintf(&w, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&w, "Message-ID: <%s@%s>\r\n", id, s.o.Hostname)
	w.WriteString("Auto-Submitted: auto-replied\r\n") // RFC 3834
	w.WriteString("MIME-Version: 1.0\r\n")
	fmt.Fprintf(&w, "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n\r\n", boundary)
	w.WriteString("This is a MIME-encapsulated delivery status notification.\r\n\r\n")

	fmt.Fprintf(&w, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", boundary)
	fmt.Fprintf(&w, "This is the mail system at %s.\r\n\r\n", s.o.Hostname)
	w.WriteString("Your message could not be delivered to the following recipients.\r\n")
	w.WriteString("No further attempts will be made.\r\n\r\n")
	for _, f := range b.Failed {
		fmt.Fprintf(&w, "  <%s>: %s\r\n", f.Addr, oneLine(strings.TrimPrefix(strings.TrimPrefix(f.Diagnostic, "smtp; "), "x-local; ")))
	}
	w.WriteString("\r\n")

	fmt.Fprintf(&w, "--%s\r\nContent-Type: message/delivery-status\r\n\r\n", boundary)
	fmt.Fprintf(&w, "Reporting-MTA: dns; %s\r\n", s.o.Hostname)
	if !b.Arrival.IsZero() {
		fmt.Fprintf(&w, "Arrival-Date: %s\r\n", b.Arrival.Format(time.RFC1123Z))
	}
	for _, f := range b.Failed {
		fmt.Fprintf(&w, "\r\nFinal-Recipient: rfc822; %s\r\n", f.Addr)
		w.WriteString("Action: failed\r\n")
		fmt.Fprintf(&w, "Status: %s\r\n", f.Status)
		if f.RemoteMTA != "" {
			fmt.Fprintf(&w, "Remote-MTA: dns; %s\r\n", oneLine(f.RemoteMTA))
		}
		if f.Diagnostic != "" {
			fmt.Fprintf(&w, "Diagnostic-Code: %s\r\n", oneLine(f.Diagnostic))
		}
		if !b.LastAttempt.IsZero() {
			fmt.Fprintf(&w, "Last-Attempt-Date: %s\r\n", b.LastAttempt.Format(time.RFC1123Z))
		}
	}
	w.WriteString("\r\n")
	if len(b.Headers) > 0 {
		fmt.Fprintf(&w, "--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n", boundary)
		w.Write(b.Headers)
		if !bytes.HasSuffix(b.Headers, []byte("\n")) {
			w.WriteString("\r\n")
		}
	}
	fmt.Fprintf(&w, "--%s--\r\n", boundary)
	return w.Bytes()
}

// oneLine keeps remote text inside one header line, at most 500 bytes.
func oneLine(s string) string {
	s = noControls(s)
	if len(s) > 500 {
		s = strings.ToValidUTF8(s[:500], "")
	}
	return s
}

// noControls replaces line breaks and tabs by spaces and drops other
// control characters.
func noControls(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == '\t' {
			return ' '
		}
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// statusOf picks the enhanced status code for a reply: the one the server
// sent, or the class default (RFC 3463).
func statusOf(code int, msg string) string {
	f := strings.Fields(msg)
	if len(f) > 0 && f[0] == strconv.Itoa(code) {
		f = f[1:]
	}
	if len(f) > 0 && isStatusCode(f[0]) && int(f[0][0]-'0') == code/100 {
		return f[0]
	}
	if code >= 400 && code < 500 {
		return "4.0.0"
	}
	return "5.0.0"
}

func isStatusCode(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || (parts[0] != "2" && parts[0] != "4" && parts[0] != "5") {
		return false
	}
	for _, p := range parts[1:] {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}
