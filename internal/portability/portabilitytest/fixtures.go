// Package portabilitytest writes the sample data that the import and export
// tests use: a Maildir, an mbox, calendars, contacts and a folder of files,
// with what an import of each must give.
package portabilitytest

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Message is a message the fixtures hold, as it must arrive.
type Message struct {
	Mailbox string
	Subject string
	Flags   []string // sorted as the store sorts them
	Date    time.Time
	Content []byte // with CRLF line endings, as stored
}

// Fixtures are the paths of the sample data and what importing it gives.
type Fixtures struct {
	Maildir, Mbox, Calendars, ICS, VCF, Files string
	// BrokenMbox and BrokenICS are damaged: each has good items and bad
	// ones that an import must report and skip.
	BrokenMbox, BrokenICS string

	Messages     []Message // from Maildir and Mbox (mbox into MboxMailbox)
	MboxMailbox  string
	Events       map[string]string // UID -> SUMMARY, into the default calendar
	Todos        map[string]string // UID -> SUMMARY, into the default task list
	FolderEvents map[string]string // UID -> SUMMARY, into the calendar "Klasse 7b"
	Contacts     map[string]string // FN -> UID ("" when the card has none), default address book
	FileSums     map[string][32]byte
	BigFile      string // the 5 MiB file, relative to Files
}

func crlf(s string) []byte {
	return []byte(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n"))
}

func write(t testing.TB, path string, data []byte, mod time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if !mod.IsZero() {
		if err := os.Chtimes(path, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
}

// Write writes the fixtures under dir.
func Write(t testing.TB, dir string) *Fixtures {
	t.Helper()
	f := &Fixtures{
		Maildir:     filepath.Join(dir, "Maildir"),
		Mbox:        filepath.Join(dir, "Alte Post.mbox"),
		BrokenMbox:  filepath.Join(dir, "damaged.mbox"),
		Calendars:   filepath.Join(dir, "Kalender"),
		ICS:         filepath.Join(dir, "Kalender", "termine.ics"),
		BrokenICS:   filepath.Join(dir, "damaged.ics"),
		VCF:         filepath.Join(dir, "kontakte.vcf"),
		Files:       filepath.Join(dir, "Unterricht"),
		MboxMailbox: "Alte Post",
		FileSums:    make(map[string][32]byte),
	}
	day := func(d int) time.Time { return time.Date(2024, 3, d, 9, 30, 0, 0, time.UTC) }

	// A Maildir with INBOX and three folders (Maildir++ layout, one of
	// them two levels deep, one with a modified UTF-7 name), flags in the
	// file names and a Dovecot keyword.
	type mdMsg struct {
		path, mailbox, subject string
		flags                  []string
		date                   time.Time
	}
	for i, m := range []mdMsg{
		{"cur/1709285400.M1P1.host,S=100:2,FS", "INBOX", "Stundenplan", []string{`\Flagged`, `\Seen`}, day(1)},
		{"new/1709371800.M2P1.host", "INBOX", "Neu und ungelesen", nil, day(2)},
		{".Sent/cur/1709458200.M3P1.host:2,RSa", "Sent", "Re: Elternabend", []string{"$Wichtig", `\Answered`, `\Seen`}, day(3)},
		{".Schule.Klasse 7b/cur/1709544600.M4P1.host:2,DT", "Schule/Klasse 7b", "Entwurf Zeugnis", []string{`\Deleted`, `\Draft`}, day(4)},
		{".Gr&APw-&AN8-e/cur/1709631000.M5P1.host:2,PS", "Grüße", "Grüße aus Köln", []string{"$Forwarded", `\Seen`}, day(5)},
	} {
		body := "From: Lehrer <lehrer@school.test>\nTo: anna@school.test\nSubject: " + m.subject +
			"\nDate: " + m.date.Format(time.RFC1123Z) + "\nMessage-ID: <md" + string(rune('a'+i)) + "@school.test>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nNachricht " + m.subject + "\n"
		write(t, filepath.Join(f.Maildir, m.path), []byte(body), m.date)
		f.Messages = append(f.Messages, Message{Mailbox: m.mailbox, Subject: m.subject, Flags: m.flags, Date: m.date, Content: crlf(body)})
	}
	for _, d := range []string{"tmp", ".Sent/new", ".Sent/tmp", ".Schule.Klasse 7b/new", ".Gr&APw-&AN8-e/new"} {
		os.MkdirAll(filepath.Join(f.Maildir, d), 0o700)
	}
	write(t, filepath.Join(f.Maildir, ".Sent", "dovecot-keywords"), []byte("0 $Wichtig\n"), time.Time{})

	// An mbox (mboxrd): a From-quoted line, a non-ASCII message (raw UTF-8
	// headers and body), status headers.
	mbox := "From lehrer@school.test Fri Mar  1 09:30:00 2024\n" +
		"From: lehrer@school.test\nSubject: Quoted\nStatus: RO\nX-Status: F\n\nFirst line\n>From the beginning, this line was quoted.\n>>From here one quote stays.\n\n" +
		"From schulleitung@school.test Sat Mar  2 10:00:00 2024\n" +
		"From: Schulleitung <schulleitung@school.test>\nSubject: Grüße zum Schuljahr – Änderungen\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nLiebe Kolleginnen und Kollegen, schöne Ferien! 日本語\n\n"
	write(t, f.Mbox, []byte(mbox), time.Time{})
	f.Messages = append(f.Messages,
		Message{Mailbox: f.MboxMailbox, Subject: "Quoted", Flags: []string{`\Flagged`, `\Seen`}, Date: time.Date(2024, 3, 1, 9, 30, 0, 0, time.UTC),
			Content: crlf("From: lehrer@school.test\nSubject: Quoted\nStatus: RO\nX-Status: F\n\nFirst line\nFrom the beginning, this line was quoted.\n>From here one quote stays.\n")},
		Message{Mailbox: f.MboxMailbox, Subject: "Grüße zum Schuljahr – Änderungen", Date: time.Date(2024, 3, 2, 10, 0, 0, 0, time.UTC),
			Content: crlf("From: Schulleitung <schulleitung@school.test>\nSubject: Grüße zum Schuljahr – Änderungen\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nLiebe Kolleginnen und Kollegen, schöne Ferien! 日本語\n")},
	)
	// A damaged mbox: a good message, one that is no mail at all, a good one.
	write(t, f.BrokenMbox, []byte("From a@b Fri Mar  1 09:30:00 2024\nFrom: a@b\nSubject: good one\n\nok\n\n"+
		"From a@b Fri Mar  1 09:31:00 2024\n\x00\x01\x02 this is not a mail message\n\n"+
		"From a@b Fri Mar  1 09:32:00 2024\nFrom: a@b\nSubject: good two\n\nok\n"), time.Time{})

	// Calendars: a file at the top (default calendar and task list) ...
	f.Events = map[string]string{"ev-konferenz@school.test": "Konferenz", "ev-weekly@school.test": "AG Robotik", "ev-no-uid": "Ohne UID"}
	f.Todos = map[string]string{"todo-1@school.test": "Korrigieren"}
	tz := "BEGIN:VTIMEZONE\nTZID:Europe/Berlin\nBEGIN:STANDARD\nDTSTART:19701025T030000\nTZOFFSETFROM:+0200\nTZOFFSETTO:+0100\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\nEND:STANDARD\nBEGIN:DAYLIGHT\nDTSTART:19700329T020000\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0200\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\nEND:DAYLIGHT\nEND:VTIMEZONE\n"
	write(t, filepath.Join(dir, "Kalender", "termine.ics"), []byte("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\nMETHOD:PUBLISH\n"+tz+
		"BEGIN:VEVENT\nUID:ev-konferenz@school.test\nDTSTAMP:20240101T000000Z\nDTSTART;TZID=Europe/Berlin:20240311T140000\nDTEND;TZID=Europe/Berlin:20240311T160000\nSUMMARY:Konferenz\nEND:VEVENT\n"+
		"BEGIN:VEVENT\nUID:ev-weekly@school.test\nDTSTAMP:20240101T000000Z\nDTSTART:20240305T130000Z\nDURATION:PT90M\nRRULE:FREQ=WEEKLY;COUNT=10\nSUMMARY:AG Robotik\nEND:VEVENT\n"+
		"BEGIN:VEVENT\nUID:ev-weekly@school.test\nDTSTAMP:20240101T000000Z\nRECURRENCE-ID:20240312T130000Z\nDTSTART:20240312T140000Z\nDURATION:PT90M\nSUMMARY:AG Robotik\nEND:VEVENT\n"+
		"BEGIN:VTODO\nUID:todo-1@school.test\nDTSTAMP:20240101T000000Z\nDUE;VALUE=DATE:20240315\nSUMMARY:Korrigieren\nEND:VTODO\n"+
		"BEGIN:VEVENT\nDTSTAMP:20240101T000000Z\nDTSTART;VALUE=DATE:20240320\nSUMMARY:Ohne UID\nEND:VEVENT\n"+
		"END:VCALENDAR\n"), time.Time{})
	// ... and one in a subfolder: a calendar named after it.
	f.FolderEvents = map[string]string{"ev-7b@school.test": "Wandertag 7b"}
	write(t, filepath.Join(dir, "Kalender", "Klasse 7b", "wandertag.ics"), crlf("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n"+
		"BEGIN:VEVENT\nUID:ev-7b@school.test\nDTSTAMP:20240101T000000Z\nDTSTART;VALUE=DATE:20240601\nSUMMARY:Wandertag 7b\nEND:VEVENT\nEND:VCALENDAR\n"), time.Time{})
	// A damaged calendar: one good event, one with a bad date, one cut off.
	write(t, f.BrokenICS, []byte("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n"+
		"BEGIN:VEVENT\nUID:good@school.test\nDTSTAMP:20240101T000000Z\nDTSTART:20240401T080000Z\nSUMMARY:Gut\nEND:VEVENT\n"+
		"BEGIN:VEVENT\nUID:bad-date@school.test\nDTSTAMP:20240101T000000Z\nDTSTART:not a date\nSUMMARY:Schlecht\nEND:VEVENT\n"+
		"BEGIN:VEVENT\nUID:cut@school.test\nDTSTART:20240402T080000Z\nSUMMARY:Abgeschnitten\n"), time.Time{})

	// Contacts: one file with four cards; one has no UID, one is invalid
	// (no name).
	f.Contacts = map[string]string{"Anna Schmidt": "c-anna", "Jörg Müller": "c-joerg", "Ohne UID": ""}
	write(t, f.VCF, []byte("BEGIN:VCARD\nVERSION:3.0\nUID:c-anna\nFN:Anna Schmidt\nN:Schmidt;Anna;;;\nEMAIL:anna@school.test\nEND:VCARD\n"+
		"BEGIN:VCARD\r\nVERSION:4.0\r\nUID:c-joerg\r\nFN:Jörg Müller\r\nNOTE:Lange Notiz die über mehrere Zeilen gefaltet\r\n  ist und weiter geht\r\nEND:VCARD\r\n"+
		"BEGIN:VCARD\nVERSION:3.0\nFN:Ohne UID\nEND:VCARD\n"+
		"BEGIN:VCARD\nVERSION:3.0\nUID:c-nameless\nEMAIL:x@y.z\nEND:VCARD\n"), time.Time{})

	// A folder of files: nested folders, an empty one, a 5 MiB file.
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 5<<20)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	f.BigFile = "Material/Video/experiment.bin"
	for rel, data := range map[string][]byte{
		"Arbeitsblatt 1.txt":           []byte("Aufgabe 1: ...\n"),
		"Material/Übung ä.md":          []byte("# Übung\n"),
		f.BigFile:                      big,
		"Material/Video/notes.txt":     bytes.Repeat([]byte("x"), 70000),
		"Leer/.gitkeep-is-hidden-file": nil,
	} {
		write(t, filepath.Join(f.Files, filepath.FromSlash(rel)), data, day(10))
		f.FileSums[rel] = sha256.Sum256(data)
	}
	os.MkdirAll(filepath.Join(f.Files, "Ganz leer"), 0o700)
	return f
}
