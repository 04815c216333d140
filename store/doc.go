// Package store is kreide's one storage layer: every protocol reads and
// writes users' data through it, and it encrypts everything a person wrote
// (shared/DESIGN.md, invariant 1). It never imports a protocol library.
//
// # Files
//
//	<data dir>/lock              flock held by the owning process (one serve per data dir)
//	<data dir>/system.db         the Directory (bbolt)
//	<data dir>/users/<id>/store.db         one account's records (bbolt)
//	<data dir>/users/<id>/blobs/xx/<blob>  encrypted content larger than 64 KiB
//	<data dir>/server.key        32 random bytes (0600): seals the outbound queue and DKIM keys
//	<data dir>/queue/<id>        outbound messages, each a stream under its own content key
//
// # system.db buckets
//
//	domains    domain -> 1
//	accounts   account id -> AccountInfo (JSON): login, aliases, quota, KEM public
//	           key, KEM private key wrapped under the user master key (UMK),
//	           display name sealed to the public key
//	addresses  address (login or alias, lower case) -> account id
//	creds      account id "/" cred id -> credRecord: one wrap of the UMK per
//	           credential (password with its Argon2id parameters, each app
//	           password with label and scopes, the recovery code)
//	queue      message id -> envelope and recipient states, sealed under a key
//	           derived from server.key (queue.go); Sweep runs before any spool
//	dkimkeys   domain -> Ed25519 and RSA-2048 DKIM keys sealed under server.key
//
// # store.db buckets (per account)
//
//	meta       modseq (change counter), mboxseq, uidvalidity, used (bytes),
//	           pending (locked deliveries not yet re-wrapped)
//	mailboxes  mailbox id (4 bytes) -> counters in clear (UIDVALIDITY, UIDNEXT,
//	           HIGHESTMODSEQ, messages, unseen, size, role) and the sealed name
//	           and subscription
//	mboxnames  HMAC(index key, name) -> mailbox id
//	roles      role ("inbox", "junk", ...) -> mailbox id, in clear so delivery
//	           while locked can find INBOX and Junk
//	msgs       mailbox id || UID -> msgRecord: size, internal date, modseq, blob
//	           ref, wrapped content key, sealed flags
//	structs    blob id -> envelope and MIME structure sealed under the
//	           message's content key
//	headers    blob id -> top-level header block (up to 64 KiB) sealed under
//	           the content key, for FETCH BODY[HEADER...] (headercache.go)
//	deleted    mailbox id -> sealed set of UIDs flagged \Deleted, a hint for
//	           EXPUNGE kept in the same transaction as the flags (deleted.go)
//	bodies     blob id -> encrypted content up to 64 KiB (inline)
//	blobfiles  blob id -> 1 for content in files (so a sweep finds orphans)
//	changes    modseq -> kind, mailbox, UID (ids only): feeds IMAP IDLE and
//	           CONDSTORE, later DAV sync tokens
//
//	fnodes     file tree node id -> sealed node (name, size, times, etag,
//	           content key wrap); fchildren: HMAC(parent id, name) -> node id;
//	           fprops: dead properties, sealed; flocks: WebDAV locks, sealed
//	           (files.go). File changes are logged with Collection ==
//	           FilesCollection and the node id as Object.
//
//	davcolls, davslugs, davobjs, davdata, davsums, davuids, davtombs:
//	           calendars, tasks and contacts, described in dav_doc.go
//
// Bucket keys are counters, random ids or HMACs: bbolt stores keys in clear.
//
// # Content
//
// Every message (and later every file) has its own random content key and is
// encrypted as a stream of 64 KiB AES-256-GCM chunks (crypto.NewStreamWriter),
// so reads can seek. The design's blob header (version, wrapped key) lives in
// the referencing record instead of the file: re-wrapping a key after a locked
// delivery is then one small bbolt write instead of a file rewrite.
//
// Delivery while the account is locked (Directory.Deliver) seals the content
// key to the account's public key (HPKE, ML-KEM-768+X25519). At the next
// unlock, a background pass re-wraps those keys under the account's blob key.
//
// # Write order and crash safety
//
// Content first: a file is written, fsynced, and its directory fsynced; then
// the bbolt transaction that references it commits (bbolt fsyncs). Deleting
// goes the other way: record first, then unlink. A crash therefore leaves at
// worst an unreferenced file, which the sweep at the next open removes. bbolt
// runs with its default sync settings: never NoSync for user data.
//
// # Locking and concurrency
//
// There is no global lock on the hot path. The Directory's RWMutex is taken
// exclusively only to swap system.db after compaction (account deletion). Each
// account has its own bbolt file with its own single writer, so one user's
// load does not stall another's; concurrent deliveries and appends to one
// account go through bbolt's Batch and share fsyncs. One handle per account
// per process is shared by every session (pool.go), reference-counted and
// closed when idle.
package store
