package portability_test

import (
	"context"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"kreide/internal/portability"
	"kreide/internal/portability/portabilitytest"
	"kreide/store"
	"kreide/store/storetest"
)

// importAll imports path into a and returns the sources of the skipped
// items with their errors.
func importAll(t *testing.T, a *store.Account, path string, o portability.ScanOptions) (*portability.Plan, map[string]string) {
	t.Helper()
	plan, err := portability.Scan(path, o)
	if err != nil {
		t.Fatalf("scan %s: %v", path, err)
	}
	defer plan.Close()
	failed := make(map[string]string)
	n := 0
	err = plan.Import(context.Background(), portability.NewStoreSink(a), func(r portability.Result) {
		n++
		if r.Err != nil {
			failed[r.Item.Source] = r.Err.Error()
		}
	})
	if err != nil {
		t.Fatalf("import %s: %v", path, err)
	}
	if int64(n) != plan.Items() {
		t.Errorf("import %s: %d outcomes for %d items", path, n, plan.Items())
	}
	return plan, failed
}

func TestImportExportRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := storetest.Open(t)
	a, _ := storetest.User(t, dir, "anna@example.org", "password one")
	f := portabilitytest.Write(t, t.TempDir())

	for _, tc := range []struct {
		path, what string
		items      int64
	}{
		{f.Maildir, "a Maildir with 4 folders", 5},
		{f.Mbox, "an mbox file", 2},
		{f.Calendars, "a folder of calendar and contact files", 5},
		{f.VCF, "a vCard file", 4},
		{f.Files, "a folder of files", 10},
	} {
		plan, failed := importAll(t, a, tc.path, portability.ScanOptions{})
		if plan.What != tc.what || plan.Items() != tc.items {
			t.Errorf("%s: %q with %d items, want %q with %d", filepath.Base(tc.path), plan.What, plan.Items(), tc.what, tc.items)
		}
		want := 0
		if tc.path == f.VCF {
			want = 1 // the card without a name
		}
		if len(failed) != want {
			t.Errorf("%s: skipped %v", filepath.Base(tc.path), failed)
		}
	}
	portabilitytest.CheckAccount(t, a, f)

	// Again: files, calendar objects and contacts are kept or replaced, not doubled.
	for _, p := range []string{f.Calendars, f.Files} {
		if _, failed := importAll(t, a, p, portability.ScanOptions{}); len(failed) != 0 {
			t.Errorf("second import of %s: %v", p, failed)
		}
	}
	portabilitytest.CheckAccount(t, a, f)

	// Export, unpack, compare with what was imported.
	pr, pw := io.Pipe()
	var last portability.Progress
	exported := make(chan error, 1)
	go func() {
		err := portability.Export(ctx, a, pw, func(p portability.Progress) { last = p })
		pw.CloseWithError(err)
		exported <- err
	}()
	out := t.TempDir()
	portabilitytest.Untar(t, pr, out)
	io.Copy(io.Discard, pr)
	if err := <-exported; err != nil {
		t.Fatal(err)
	}
	if last.Done != last.Items || last.DoneBytes != last.Bytes || last.Items == 0 {
		t.Errorf("export progress ended at %+v", last)
	}
	portabilitytest.CheckExport(t, out, f)

	// The unpacked export imports into another account: the same mailboxes
	// with the same messages and flags, the same calendars and contacts.
	b, _ := storetest.User(t, dir, "bob@example.org", "password two")
	plan, failed := importAll(t, b, out, portability.ScanOptions{})
	if len(failed) != 0 || !strings.HasPrefix(plan.What, "a kreide export") {
		t.Fatalf("import of the export (%s): %v", plan.What, failed)
	}
	summary := func(a *store.Account) []string {
		var out []string
		mbs, err := a.Mailboxes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, mb := range mbs {
			var flags []string
			a.Messages(ctx, mb.ID, nil, store.FetchOptions{}, func(m *store.Message) error {
				flags = append(flags, strings.Join(m.Flags, " ")+"@"+m.InternalDate.String())
				return nil
			})
			slices.Sort(flags)
			out = append(out, mb.Name+": "+strings.Join(flags, ", "))
		}
		for _, kind := range []store.CollectionKind{store.KindCalendar, store.KindAddressBook} {
			colls, _ := a.Collections(ctx, kind)
			for _, c := range colls {
				n := 0
				a.ListObjects(ctx, c.ID, store.ObjectOptions{}, func(*store.Object) error { n++; return nil })
				out = append(out, c.Slug+"/"+c.DisplayName+": "+string(rune('0'+n)))
			}
		}
		return out
	}
	if x, y := summary(a), summary(b); !slices.Equal(x, y) {
		t.Errorf("after export and import:\n%s\nwant\n%s", strings.Join(y, "\n"), strings.Join(x, "\n"))
	}
	if fi, err := b.Files().Stat(ctx, "Imported/"+filepath.Base(out)+"/Imported/Unterricht/"+f.BigFile); err != nil || fi.Size != 5<<20 {
		t.Errorf("the 5 MiB file after export and import: %+v %v", fi, err)
	}
}

func TestDamagedItemsAreSkipped(t *testing.T) {
	dir := storetest.Open(t)
	a, _ := storetest.User(t, dir, "anna@example.org", "password one")
	f := portabilitytest.Write(t, t.TempDir())
	ctx := context.Background()

	_, failed := importAll(t, a, f.BrokenMbox, portability.ScanOptions{Mailbox: "Kaputt"})
	if len(failed) != 1 || !strings.Contains(failed["damaged.mbox: message 2 (line 7)"], "not a mail message") {
		t.Errorf("damaged mbox: %v", failed)
	}
	mb, err := a.MailboxByName(ctx, "Kaputt")
	if err != nil || mb.Messages != 2 {
		t.Errorf("damaged mbox: mailbox %+v %v, want the 2 good messages", mb, err)
	}

	_, failed = importAll(t, a, f.BrokenICS, portability.ScanOptions{})
	if len(failed) != 2 {
		t.Errorf("damaged ics: %v", failed)
	}
	for src, msg := range failed {
		switch {
		case strings.Contains(src, "bad-date@school.test") && strings.Contains(msg, "DTSTART"):
		case strings.Contains(src, "line 16") && strings.Contains(msg, "cut off"):
		default:
			t.Errorf("damaged ics: %s: %s", src, msg)
		}
	}
	cal, _ := a.CollectionBySlug(ctx, store.KindCalendar, "calendar")
	if _, err := a.GetObject(ctx, cal.ID, "good@school.test.ics"); err != nil {
		t.Errorf("the good event of the damaged calendar: %v", err)
	}

	// Not what it claims to be: a clear error, nothing imported.
	for _, kind := range []string{portability.SourceMaildir, portability.SourceMbox} {
		if _, err := portability.Scan(f.VCF, portability.ScanOptions{Kind: kind}); err == nil {
			t.Errorf("scan of a .vcf as %s: no error", kind)
		}
	}
}

// A full quota ends the import with a clear error instead of skipping
// every item after it.
func TestQuotaStopsImport(t *testing.T) {
	ctx := context.Background()
	dir := storetest.Open(t)
	a, _ := storetest.User(t, dir, "anna@example.org", "password one")
	if err := dir.SetQuota(ctx, "anna@example.org", 1<<20); err != nil {
		t.Fatal(err)
	}
	f := portabilitytest.Write(t, t.TempDir())
	plan, err := portability.Scan(f.Files, portability.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	err = plan.Import(ctx, portability.NewStoreSink(a), func(portability.Result) {})
	if !portability.Fatal(err) {
		t.Fatalf("import over quota: %v", err)
	}
}
