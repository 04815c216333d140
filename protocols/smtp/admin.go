package smtp

import (
	"context"
	"fmt"
	"strings"
	"time"

	"kreide/store"
)

// Functions behind `kreide queue list|retry|drop` and `kreide dns`. The
// package-level ones work on a Directory directly (the CLI, with serve not
// running: one process owns a data dir); the Server methods do the same and
// wake the running queue.

// QueueItem is one queued message as an administrator sees it.
type QueueItem struct {
	ID          string
	From        string // "" for a bounce
	Recipients  []store.QueueRecipient
	Size        int64
	Created     time.Time
	NextAttempt time.Time
	LastAttempt time.Time
	Attempts    int
}

// QueueList lists the outbound queue, oldest first.
func QueueList(ctx context.Context, d *store.Directory) ([]QueueItem, error) {
	msgs, err := d.Queue().List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]QueueItem, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, QueueItem{ID: m.ID, From: m.From, Recipients: m.Recipients, Size: m.Size + int64(len(m.Prefix)),
			Created: m.Created, NextAttempt: m.NextAttempt, LastAttempt: m.LastAttempt, Attempts: m.Attempts})
	}
	return out, nil
}

// QueueRetry makes a queued message due now.
func QueueRetry(ctx context.Context, d *store.Directory, id string) error {
	q := d.Queue()
	m, err := q.Get(ctx, id)
	if err != nil {
		return err
	}
	m.NextAttempt = time.Now().UTC()
	return q.Update(ctx, &m)
}

// QueueDrop removes a queued message without notifying its sender.
func QueueDrop(ctx context.Context, d *store.Directory, id string) error {
	return d.Queue().Remove(ctx, id)
}

// QueueList lists the outbound queue.
func (s *Server) QueueList(ctx context.Context) ([]QueueItem, error) { return QueueList(ctx, s.o.Dir) }

// QueueRetry makes a message due now and wakes the queue.
func (s *Server) QueueRetry(ctx context.Context, id string) error {
	if err := QueueRetry(ctx, s.o.Dir, id); err != nil {
		return err
	}
	s.queue.wake()
	return nil
}

// QueueDrop removes a message from the queue.
func (s *Server) QueueDrop(ctx context.Context, id string) error { return QueueDrop(ctx, s.o.Dir, id) }

// DNSRecord is one record an administrator publishes for mail to work.
type DNSRecord struct {
	Name  string // fully qualified, without the final dot
	Type  string // "MX" or "TXT"
	Value string // unquoted
	Note  string
}

// ZoneLine formats the record for a zone file; long TXT values are split
// into quoted strings of at most 255 bytes (RFC 1035 section 3.3.14).
func (r DNSRecord) ZoneLine() string {
	v := r.Value
	if r.Type == "TXT" {
		var parts []string
		for len(v) > 255 {
			parts = append(parts, `"`+v[:255]+`"`)
			v = v[255:]
		}
		parts = append(parts, `"`+v+`"`)
		v = strings.Join(parts, " ")
	}
	return fmt.Sprintf("%s.\tIN\t%s\t%s", r.Name, r.Type, v)
}

// DNSRecords lists, for every served domain, the MX, SPF, DKIM (Ed25519 and
// RSA; keys are created here on first use) and DMARC records. hostname is
// the name of this server as published in an A/AAAA record.
func DNSRecords(ctx context.Context, d *store.Directory, hostname string) ([]DNSRecord, error) {
	domains, err := d.Domains(ctx)
	if err != nil {
		return nil, err
	}
	hostname = strings.TrimSuffix(hostname, ".")
	var out []DNSRecord
	for _, dom := range domains {
		out = append(out,
			DNSRecord{Name: dom, Type: "MX", Value: "10 " + hostname + ".", Note: "mail for " + dom + " goes to this server"},
			DNSRecord{Name: dom, Type: "TXT", Value: "v=spf1 mx -all", Note: "SPF: only the MX may send; add other senders (newsletter services) before -all"},
		)
		keys, err := d.DKIMKeys(ctx, dom)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			out = append(out, DNSRecord{Name: k.DNSName(), Type: "TXT", Value: k.DNSRecord(), Note: "DKIM " + k.Algorithm + " key"})
		}
		out = append(out, DNSRecord{Name: "_dmarc." + dom, Type: "TXT", Value: "v=DMARC1; p=quarantine; adkim=r; aspf=r",
			Note: "DMARC: receivers file unauthenticated mail claiming to be from " + dom + " as spam"})
		out = append(out, serviceRecords(dom, hostname)...)
	}
	return out, nil
}

// serviceRecords are the SRV records (RFC 6186 for mail, RFC 6764 for
// CalDAV and CardDAV) and host names with which clients such as DAVx5,
// Thunderbird and Outlook find the server from an address alone.
func serviceRecords(dom, hostname string) []DNSRecord {
	srv := func(service string, port int, what string) DNSRecord {
		return DNSRecord{Name: service + "._tcp." + dom, Type: "SRV", Value: fmt.Sprintf("0 1 %d %s.", port, hostname), Note: what}
	}
	return []DNSRecord{
		srv("_submissions", 465, "mail submission over TLS (RFC 8314)"),
		srv("_submission", 587, "mail submission with STARTTLS"),
		srv("_imaps", 993, "IMAP over TLS"),
		srv("_imap", 143, "IMAP with STARTTLS"),
		srv("_caldavs", 443, "calendars (DAVx5, Apple)"),
		{Name: "_caldavs._tcp." + dom, Type: "TXT", Value: "path=/.well-known/caldav", Note: "where calendars start"},
		srv("_carddavs", 443, "contacts (DAVx5, Apple)"),
		{Name: "_carddavs._tcp." + dom, Type: "TXT", Value: "path=/.well-known/carddav", Note: "where address books start"},
		{Name: "autoconfig." + dom, Type: "CNAME", Value: hostname + ".", Note: "Thunderbird autoconfiguration (the TLS certificate must cover this name)"},
		{Name: "autodiscover." + dom, Type: "CNAME", Value: hostname + ".", Note: "Outlook Autodiscover (the TLS certificate must cover this name)"},
	}
}

// DNSRecords lists the DNS records for the server's domains and Hostname.
func (s *Server) DNSRecords(ctx context.Context) ([]DNSRecord, error) {
	return DNSRecords(ctx, s.o.Dir, s.o.Hostname)
}
