// Package portability moves a user's data into and out of kreide: the
// right to data portability (GDPR article 20). `kreide import` and `kreide
// export` (cmd/kreide) are its front ends; internal/admin carries the work
// to a running serve.
//
// # Import
//
// Scan looks at a path on the admin's machine, detects what it is and
// makes a Plan: the list of items (messages, calendar objects, contacts,
// files, folders) with where each one's bytes are, and the totals for a
// progress bar. It reads every file once to find item boundaries and never
// holds a whole file in memory: an mbox is indexed by offsets, a calendar
// by the offsets of its components grouped by UID.
//
//	Maildir      cur/ and new/; Maildir++ subfolders ".Folder.Sub" (modified
//	             UTF-7, Dovecot's "\2e" escapes) and nested "fs" layout
//	             folders become mailboxes "Folder/Sub"; ":2,DFPRST" flags and
//	             dovecot-keywords letters become IMAP flags; the file's
//	             modification time is the internal date
//	mbox         From_ lines (preceded by an empty line and carrying a date)
//	             split messages; mboxrd unquoting (">From " loses one '>');
//	             Status, X-Status and X-Mozilla-Status give flags
//	.ics         each VEVENT/VTODO/VJOURNAL and its overrides (same UID)
//	             become one calendar object, with the VTIMEZONEs it uses
//	.vcf         each vCard becomes one contact
//	other files  the user's file tree under /Imported/<name>/
//
// Plan.Import hands the items in order to a Sink. StoreSink stores them
// in an unlocked account (the same code runs in serve and in the CLI);
// internal/admin has a Sink that streams them to serve over the control
// socket. A damaged item is reported and skipped; only a fatal error
// (quota exceeded, the account closed, interrupted) ends an import early.
// Importing the same calendar objects, contacts or files again replaces or
// keeps them; messages are imported again (mail has no reliable identity).
//
// # Export
//
// Export writes one tar stream:
//
//	README.txt
//	Maildir/                 INBOX (cur/ new/ tmp/), ".Folder.Sub/" Maildir++
//	                         folders, file names "<date>.K<uid>V<uidvalidity>.kreide,S=<size>:2,<flags>",
//	                         dovecot-keywords for keywords; the file time is
//	                         the internal date
//	calendars/<slug>.ics     one VCALENDAR per calendar (X-WR-CALNAME)
//	contacts/<slug>.vcf      all vCards of an address book
//	files/...                the file tree
//
// Messages and files are streamed; one calendar or address book at a time
// is assembled in memory (tar needs each entry's size before its bytes).
// The caller encrypts the stream (cmd/kreide uses OpenPGP): nothing here
// ever writes plaintext to a file.
package portability
