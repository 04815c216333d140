// Package faulttest holds kreide's whole-process fault tests: they build the
// kreide binary, run `kreide serve` on a temporary data dir, kill it with
// SIGKILL at random moments while clients deliver, append, move, expunge and
// upload, and check after each kill, with the server stopped, that
//
//   - store.Verify finds the data dir consistent,
//   - everything the server acknowledged (SMTP 250, IMAP OK, HTTP 201/204)
//     is there, complete,
//   - nothing half-written is visible: every message and file is exactly
//     one complete version, and a moved message or file is in exactly one
//     place.
//
// The full-disk test (full_test.go) mounts a small tmpfs as the data dir and
// checks the answers a full disk gives (SMTP 452, IMAP NO, HTTP 507) and
// that nothing is damaged; it skips when mounting is not possible.
//
// The package has only tests; this file is its documentation.
package faulttest
