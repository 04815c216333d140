package portabilitytest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"kreide/store"
)

// CheckAccount checks that a has everything of f (imported with the
// default options), through the store's API.
func CheckAccount(t testing.TB, a *store.Account, f *Fixtures) {
	t.Helper()
	ctx := context.Background()

	// Mail: each message in its mailbox with its flags and date, byte for byte.
	type stored struct {
		flags []string
		date  time.Time
	}
	got := make(map[string]map[string]stored) // mailbox -> content -> message
	for _, m := range f.Messages {
		if got[m.Mailbox] != nil {
			continue
		}
		mb, err := a.MailboxByName(ctx, m.Mailbox)
		if err != nil {
			t.Errorf("mailbox %q: %v", m.Mailbox, err)
			continue
		}
		got[m.Mailbox] = make(map[string]stored)
		var msgs []store.Message
		if err := a.Messages(ctx, mb.ID, nil, store.FetchOptions{}, func(m *store.Message) error {
			msgs = append(msgs, *m)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, msg := range msgs {
			br, err := a.OpenMessage(ctx, mb.ID, msg.UID)
			if err != nil {
				t.Fatal(err)
			}
			content, err := io.ReadAll(br)
			br.Close()
			if err != nil {
				t.Fatal(err)
			}
			got[m.Mailbox][string(content)] = stored{msg.Flags, msg.InternalDate}
		}
	}
	for _, m := range f.Messages {
		s, ok := got[m.Mailbox][string(m.Content)]
		if !ok {
			t.Errorf("message %q is not in mailbox %q (or differs)", m.Subject, m.Mailbox)
			continue
		}
		if !slices.Equal(s.flags, m.Flags) {
			t.Errorf("message %q in %q: flags %q, want %q", m.Subject, m.Mailbox, s.flags, m.Flags)
		}
		if !s.date.Equal(m.Date) {
			t.Errorf("message %q in %q: internal date %v, want %v", m.Subject, m.Mailbox, s.date, m.Date)
		}
	}
	if _, err := a.MailboxByName(ctx, "Schule"); err != nil {
		t.Errorf("parent mailbox Schule: %v", err)
	}

	// Calendars and contacts.
	objects := func(kind store.CollectionKind, slug string) (store.Collection, []string) {
		c, err := a.CollectionBySlug(ctx, kind, slug)
		if err != nil {
			t.Errorf("collection %s: %v", slug, err)
			return c, nil
		}
		var out []string
		if err := a.ListObjects(ctx, c.ID, store.ObjectOptions{Data: true}, func(o *store.Object) error {
			out = append(out, string(o.Data))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return c, out
	}
	hasOnce := func(objs []string, what, where string) {
		n := 0
		for _, o := range objs {
			if strings.Contains(o, what) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d objects with %q, want 1", where, n, what)
		}
	}
	cal, events := objects(store.KindCalendar, "calendar")
	for _, summary := range f.Events {
		hasOnce(events, "SUMMARY:"+summary+"\r\n", "calendar")
	}
	if len(events) != len(f.Events) {
		t.Errorf("calendar has %d objects, want %d", len(events), len(f.Events))
	}
	for _, o := range events {
		if strings.Contains(o, "AG Robotik") && strings.Count(o, "BEGIN:VEVENT") != 2 {
			t.Errorf("the recurring event and its override are not one object:\n%s", o)
		}
		if strings.Contains(o, "TZID=Europe/Berlin") && !strings.Contains(o, "BEGIN:VTIMEZONE") {
			t.Errorf("an event lost its VTIMEZONE:\n%s", o)
		}
		if strings.Contains(o, "METHOD:") {
			t.Errorf("METHOD kept in a stored object:\n%s", o)
		}
	}
	_, todos := objects(store.KindCalendar, "tasks")
	for _, summary := range f.Todos {
		hasOnce(todos, "SUMMARY:"+summary+"\r\n", "tasks")
	}
	c7b, folderEvents := objects(store.KindCalendar, "klasse-7b")
	if c7b.DisplayName != "Klasse 7b" {
		t.Errorf("calendar klasse-7b is named %q", c7b.DisplayName)
	}
	for _, summary := range f.FolderEvents {
		hasOnce(folderEvents, "SUMMARY:"+summary+"\r\n", "klasse-7b")
	}
	// The summaries the store keeps answer time-range queries: the
	// conference (exact) and the weekly club (recurring) on 11 March.
	var inRange []string
	err := a.ObjectsInRange(ctx, cal.ID, store.RangeQuery{Start: time.Date(2024, 3, 11, 0, 0, 0, 0, time.UTC), End: time.Date(2024, 3, 13, 0, 0, 0, 0, time.UTC)},
		store.ObjectOptions{Data: true}, func(o *store.Object) error {
			inRange = append(inRange, string(o.Data))
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Konferenz", "AG Robotik"} {
		hasOnce(inRange, want, "time range 11-13 March")
	}
	hasNot := func(objs []string, what, where string) {
		for _, o := range objs {
			if strings.Contains(o, what) {
				t.Errorf("%s: has %q", where, what)
			}
		}
	}
	hasNot(inRange, "Ohne UID", "time range 11-13 March")

	_, cards := objects(store.KindAddressBook, "contacts")
	for fn, uid := range f.Contacts {
		hasOnce(cards, "FN:"+fn, "contacts")
		if uid != "" {
			hasOnce(cards, "UID:"+uid, "contacts")
		}
	}
	if len(cards) != len(f.Contacts) {
		t.Errorf("address book has %d contacts, want %d", len(cards), len(f.Contacts))
	}

	// Files under /Imported/<folder name>/.
	root := "Imported/" + filepath.Base(f.Files)
	for rel, sum := range f.FileSums {
		br, fi, err := a.Files().Open(ctx, root+"/"+rel)
		if err != nil {
			t.Errorf("file /%s/%s: %v", root, rel, err)
			continue
		}
		h := sha256.New()
		n, err := io.Copy(h, br)
		br.Close()
		if err != nil || n != fi.Size || !bytes.Equal(h.Sum(nil), sum[:]) {
			t.Errorf("file /%s/%s: %d bytes, %v, content differs", root, rel, n, err)
		}
	}
	if fi, err := a.Files().Stat(ctx, root+"/Ganz leer"); err != nil || !fi.Dir {
		t.Errorf("empty folder: %+v %v", fi, err)
	}
}

// Untar unpacks a tar stream into dir, refusing names that leave it.
func Untar(t testing.TB, r io.Reader, dir string) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("reading the archive: %v", err)
		}
		name := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(name, filepath.Clean(dir)+string(filepath.Separator)) {
			t.Fatalf("archive entry %q leaves the folder", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(name, 0o700); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			write(t, name, data, h.ModTime)
		default:
			t.Fatalf("archive entry %q of type %c", h.Name, h.Typeflag)
		}
	}
}

// CheckExport checks an unpacked export (in dir) against f: every message
// in the Maildir with its flags and date, the calendars, contacts and files.
func CheckExport(t testing.TB, dir string, f *Fixtures) {
	t.Helper()
	folders := map[string]string{"INBOX": "Maildir", "Sent": "Maildir/.Sent", "Schule/Klasse 7b": "Maildir/.Schule.Klasse 7b",
		"Grüße": "Maildir/.Gr&APwA3w-e", f.MboxMailbox: "Maildir/." + f.MboxMailbox}
	letters := map[byte]string{'D': `\Draft`, 'F': `\Flagged`, 'P': "$Forwarded", 'R': `\Answered`, 'S': `\Seen`, 'T': `\Deleted`}
	for _, m := range f.Messages {
		folder := filepath.Join(dir, filepath.FromSlash(folders[m.Mailbox]))
		keywords := make(map[byte]string)
		if kw, err := os.ReadFile(filepath.Join(folder, "dovecot-keywords")); err == nil {
			for line := range strings.Lines(string(kw)) {
				num, name, _ := strings.Cut(strings.TrimSpace(line), " ")
				if len(num) == 1 {
					keywords['a'+num[0]-'0'] = name
				}
			}
		}
		ents, err := os.ReadDir(filepath.Join(folder, "cur"))
		if err != nil {
			t.Errorf("message %q: %v", m.Subject, err)
			continue
		}
		found := false
		for _, de := range ents {
			path := filepath.Join(folder, "cur", de.Name())
			data, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(data, m.Content) {
				continue
			}
			found = true
			_, info, ok := strings.Cut(de.Name(), ":2,")
			var flags []string
			for i := 0; ok && i < len(info); i++ {
				if fl := letters[info[i]]; fl != "" {
					flags = append(flags, fl)
				} else if kw := keywords[info[i]]; kw != "" {
					flags = append(flags, kw)
				}
			}
			slices.Sort(flags)
			if !slices.Equal(flags, m.Flags) {
				t.Errorf("exported message %q (%s): flags %q, want %q", m.Subject, de.Name(), flags, m.Flags)
			}
			if fi, err := os.Stat(path); err != nil || !fi.ModTime().Equal(m.Date) {
				t.Errorf("exported message %q: time %v, want %v", m.Subject, fi.ModTime(), m.Date)
			}
		}
		if !found {
			t.Errorf("message %q is not in the exported %s", m.Subject, folders[m.Mailbox])
		}
	}
	read := func(rel string) string {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			t.Error(err)
		}
		return string(data)
	}
	cal := read("calendars/calendar.ics")
	for _, s := range f.Events {
		if strings.Count(cal, "SUMMARY:"+s+"\r\n") < 1 {
			t.Errorf("calendars/calendar.ics lacks %q:\n%s", s, cal)
		}
	}
	if strings.Count(cal, "BEGIN:VCALENDAR") != 1 || strings.Count(cal, "BEGIN:VTIMEZONE") != 1 {
		t.Errorf("calendars/calendar.ics is not one VCALENDAR with one VTIMEZONE:\n%s", cal)
	}
	if tasks := read("calendars/tasks.ics"); !strings.Contains(tasks, "SUMMARY:Korrigieren") {
		t.Errorf("calendars/tasks.ics:\n%s", tasks)
	}
	if c7b := read("calendars/klasse-7b.ics"); !strings.Contains(c7b, "X-WR-CALNAME:Klasse 7b") || !strings.Contains(c7b, "Wandertag 7b") {
		t.Errorf("calendars/klasse-7b.ics:\n%s", c7b)
	}
	cards := read("contacts/contacts.vcf")
	for fn := range f.Contacts {
		if !strings.Contains(cards, "FN:"+fn) {
			t.Errorf("contacts/contacts.vcf lacks %q", fn)
		}
	}
	root := filepath.Join(dir, "files", "Imported", filepath.Base(f.Files))
	for rel, sum := range f.FileSums {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil || sha256.Sum256(data) != sum {
			t.Errorf("exported file %s differs (%v)", rel, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "Ganz leer")); err != nil || !fi.IsDir() {
		t.Errorf("exported empty folder: %v", err)
	}
}
