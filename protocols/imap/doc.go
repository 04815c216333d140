// Package imap is kreide's IMAP4rev1/IMAP4rev2 server: a thin
// github.com/emersion/go-imap/v2/imapserver Session over *store.Account. It
// never touches bbolt, keys or paths; every call goes through the store, and
// store errors become IMAP response codes (errors.go).
//
// # Rules
//
//   - One Session per connection. LOGIN and AUTHENTICATE PLAIN accept the
//     account's password or an app password of scope imap. Without TLS they
//     are refused (LOGINDISABLED, PRIVACYREQUIRED) unless
//     Options.AllowPlaintext says the peer may (kreide: loopback only).
//   - Mailbox names are the store's names; "/" is the hierarchy delimiter
//     (the store itself is flat). CREATE makes missing parents, RENAME
//     renames children, DELETE of a parent leaves its children, which LIST
//     then shows under a \Noselect parent (RFC 3501 6.3.4, RFC 9051 6.3.4).
//   - Sequence numbers (RFC 3501 2.3.1.2, RFC 9051 7.5.1): a selected
//     session keeps its own ascending UID list (view.go). Changes made by
//     others are read from the account's change log when the watcher fires
//     and announced after commands: EXISTS at once, FETCH FLAGS at once,
//     EXPUNGE only after commands that allow it (never after FETCH, STORE or
//     SEARCH by sequence number, RFC 9051 7.5.1), so a client's sequence
//     numbers never shift under it.
//   - FETCH streams: body sections are cut from the cached MIME structure's
//     byte offsets and read with a seeking reader; no section is ever read
//     whole into memory (only header blocks, bounded by
//     message.MaxHeaderSize, for HEADER.FIELDS). Bbolt read transactions are
//     never held while writing to the network: metadata is read in batches.
//   - Bad input never panics the process and never changes stored data: each
//     command recovers from panics and answers NO [SERVERBUG] (invariant 5).
//   - Idle connections: unauthenticated ones are dropped after a minute,
//     authenticated ones after 30 minutes without a command, IDLE ones after
//     35 minutes (RFC 2177: clients re-IDLE every 29 minutes).
//
// Between TLS and imapserver sits frontConn (wire.go): it answers ID (RFC
// 2971), does STARTTLS, refuses logins without TLS and literals over their
// limits before imapserver reads them, rewrites the capability lists to the
// connection's security, and batches response lines per command. imapserver
// (go-imap v2.0.0-beta.8) can do none of these per connection.
//
// Store API this package works around: an atomic snapshot of a mailbox's
// UIDs with the change counter (Select reads the counter first and tolerates
// the overlap), and a rename of a mailbox hierarchy in one transaction
// (Rename renames one mailbox at a time).
package imap
