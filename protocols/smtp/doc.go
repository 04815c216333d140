// Package smtp is kreide's mail transfer: inbound MX (port 25), message
// submission (587 with STARTTLS, 465 with implicit TLS) and the outbound
// queue. It adapts go-smtp sessions to the store and never touches bbolt,
// keys or file paths itself.
//
// # Files
//
//	server.go      Options, Server, the three Serve functions, Close
//	limits.go      connections per address
//	session.go     the go-smtp session shared by both modes: MAIL, RCPT
//	auth.go        AUTH PLAIN and LOGIN (submission only, TLS or AllowPlaintext)
//	inbound.go     DATA/BDAT on port 25: checks, spool, Deliver
//	authcheck.go   SPF, DKIM, DMARC and the Authentication-Results field
//	submission.go  DATA on 587/465: sender rules, local delivery, queueing
//	dkimsign.go    outbound DKIM signatures (Ed25519 and RSA)
//	queue.go       the queue runner: scheduling, backoff, expiry
//	remote.go      the outbound SMTP client: MX, STARTTLS, transaction
//	dsn.go         delivery status notifications (RFC 3464)
//	header.go      the header block: bounded reading, From, Received
//	admin.go       queue list/retry/drop and DNS records, for the CLI
//
// # Rules
//
//   - 250 means durable: DATA is answered only after Directory.Deliver
//     returned (every copy fsynced) and, for remote recipients, after the
//     queue record and its spool file were fsynced.
//   - No open relay: port 25 accepts only addresses of served domains (login
//     or alias); anything else is 550 5.7.1. Port 25 offers no AUTH.
//   - Submission accepts AUTH only over TLS, or where AllowPlaintext says so
//     (loopback); without it EHLO does not even advertise AUTH. Passwords and
//     app passwords with the smtp scope log in. MAIL FROM and the From and
//     Sender fields must be addresses of the account (553 5.7.1).
//   - Nothing in clear on disk: a message is received into an encrypted
//     spool (store.Spool: random key in memory, at most one 64 KiB chunk in
//     memory, the rest in a file that is unlinked at once unless the message
//     is queued). Memory per transaction is bounded by the header block
//     (256 KiB) plus that chunk, whatever the message size.
//   - Bad input gets a 5xx and stores nothing: header too large or
//     malformed, no or several From fields, size over MaxMessageSize (552
//     5.3.4), too many recipients (452 4.5.3), too many unknown recipients
//     (421 and the connection closes).
//
// # Inbound checks
//
// See authcheck.go: SPF on MAIL FROM (or HELO for the null sender), every
// DKIM signature (at most five), DMARC with relaxed or strict alignment over
// the organisational domain (the public suffix list approximates RFC 7489's
// organisational domain). DMARC reject is refused at the end of DATA with 550
// 5.7.1; quarantine is filed in Junk.
//
// # Outbound
//
// Submitted mail for other domains is signed with both of the From domain's
// DKIM keys and queued (store.Queue). The queue runner delivers it by MX
// (falling back to the domain's own address), with opportunistic STARTTLS,
// retries temporary failures with exponential backoff for QueueLifetime
// (5 days), and sends the sender a DSN into their INBOX for recipients that
// fail for good or expire.
package smtp
