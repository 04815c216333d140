package store

// # The DAV model (calendars, tasks, contacts)
//
// The calendar and contact part of the package documentation (doc.go has
// mail, files and the rules every model follows).
//
//	davcolls   collection id (4 bytes, counter "davseq" in meta) -> kind and
//	           modseq/created in clear (JSON), and sealed: slug (URL
//	           segment), display name, description, colour, order, components,
//	           dead properties
//	davslugs   HMAC(index key, "dav-slug", kind || slug) -> collection id
//	davobjs    collection id || HMAC(index key, "dav-object", collection id ||
//	           name) -> objRecord: modseq, size, mtime and where the content
//	           is in clear; sealed: name, ETag, UID, component type
//	davdata    same key -> content up to 64 KiB sealed under the record key
//	           (larger content: an encrypted blob file, its content key wrapped
//	           under the blob key in the objRecord; blobfiles lists it)
//	davsums    same key (calendars only) -> sealed 18-byte summary: component,
//	           exact flag, first start and last end of all occurrences
//	davuids    collection id || HMAC(index key, "dav-uid", collection id ||
//	           UID) -> the object's HMAC (no-uid-conflict checks)
//	davtombs   same key as davobjs -> modseq of the deletion in clear and the
//	           sealed name: deleted members for sync-collection
//
// Changes go to the account's change log as ChangeObjectPut/Deleted and
// ChangeCollectionPut/Delete with the collection id and the object's HMAC.
// A collection's ModSeq is its ctag and its sync token; SyncChanges reads
// the log after a token and looks up the records (or tombstones) it names.
//
// # Time-range queries: sealed summaries, not a plaintext index
//
// A calendar-query with a time range must not decrypt and parse every event.
// A plaintext index (collection || coarse time bucket) would tell anyone with
// the data dir when a person has appointments: their timetable, holidays,
// doctor's visits. That is "what a person wrote" (invariant 1), so kreide
// instead keeps one sealed, constant-size summary per calendar object in its
// own bucket. A range query scans the collection's summaries sequentially,
// opens each (XChaCha20-Poly1305 over 18 bytes) and compares integers; only
// candidates get their metadata or content decrypted, and only recurring or
// floating ones are parsed by the protocol layer. What leaks: the number of
// objects per collection and their sizes and modification times (as for
// mail), nothing about when events happen. Cost: see the benchmark in
// protocols/dav/caldav (a week out of 10,000 events).
//
// UIDs, names and ETags are sealed; their HMACs reveal only equality within
// a collection (two resources never share a UID anyway).
