package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"kreide/store"
)

func collBySlug(t testing.TB, a *store.Account, kind store.CollectionKind, slug string) store.Collection {
	t.Helper()
	c, err := a.CollectionBySlug(ctx, kind, slug)
	if err != nil {
		t.Fatalf("collection %q: %v", slug, err)
	}
	return c
}

func event(uid, summary string) []byte {
	return []byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//kreide//test//EN\r\nBEGIN:VEVENT\r\nUID:" + uid +
		"\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250901T080000Z\r\nDTEND:20250901T090000Z\r\nSUMMARY:" + summary +
		"\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestDAVDefaultCollections(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "lehrer@example.org", "password1")
	cals, err := a.Collections(ctx, store.KindCalendar)
	if err != nil {
		t.Fatal(err)
	}
	if len(cals) != 2 || cals[0].DisplayName != "Kalender" || !slices.Equal(cals[0].Components, []string{store.CompEvent}) ||
		cals[1].Slug != "tasks" || !slices.Equal(cals[1].Components, []string{store.CompTodo}) {
		t.Fatalf("calendars: %+v", cals)
	}
	books, err := a.Collections(ctx, store.KindAddressBook)
	if err != nil || len(books) != 1 || books[0].Slug != "contacts" || books[0].ModSeq == 0 {
		t.Fatalf("address books: %+v %v", books, err)
	}
}

func TestDAVCollections(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "coll@example.org", "password1")
	c, err := a.CreateCollection(ctx, store.Collection{Kind: store.KindCalendar, Slug: "Mathe 7b", DisplayName: "Mathe"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Accepts(store.CompEvent) || !c.Accepts(store.CompTodo) || c.Accepts(store.CompJournal) {
		t.Fatalf("default components: %v", c.Components)
	}
	if _, err := a.CreateCollection(ctx, store.Collection{Kind: store.KindCalendar, Slug: "Mathe 7b"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate slug: %v", err)
	}
	// The same slug is free among address books.
	if _, err := a.CreateCollection(ctx, store.Collection{Kind: store.KindAddressBook, Slug: "Mathe 7b"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "a/b", "..", strings.Repeat("x", 300), "tab\there"} {
		if _, err := a.CreateCollection(ctx, store.Collection{Kind: store.KindCalendar, Slug: bad}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("slug %q: %v", bad, err)
		}
	}
	color, name, xml := "#FF0000FF", "Mathematik", `<x:y xmlns:x="urn:x">z</x:y>`
	u, err := a.UpdateCollection(ctx, c.ID, store.CollectionPatch{Color: &color, DisplayName: &name,
		Dead: map[string]*string{"{urn:x}prop": &xml}})
	if err != nil {
		t.Fatal(err)
	}
	if u.Color != color || u.DisplayName != name || u.Dead["{urn:x}prop"] != xml || u.ModSeq <= c.ModSeq {
		t.Fatalf("updated: %+v", u)
	}
	huge := strings.Repeat("x", 20<<10)
	if _, err := a.UpdateCollection(ctx, c.ID, store.CollectionPatch{Color: &name, Dead: map[string]*string{"{urn:x}big": &huge}}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("oversized dead property: %v", err)
	}
	if got := collBySlug(t, a, store.KindCalendar, "Mathe 7b"); got.Color != color { // all or nothing
		t.Fatalf("failed patch applied partly: %+v", got)
	}
	u, err = a.UpdateCollection(ctx, c.ID, store.CollectionPatch{Dead: map[string]*string{"{urn:x}prop": nil}})
	if err != nil || len(u.Dead) != 0 {
		t.Fatalf("remove dead property: %+v %v", u, err)
	}
	if _, _, err := a.PutObject(ctx, c.ID, "e.ics", event("u1", "x"), store.PutObjectOptions{Summary: store.ObjectSummary{UID: "u1", Component: store.CompEvent}}); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteCollection(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CollectionBySlug(ctx, store.KindCalendar, "Mathe 7b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted collection: %v", err)
	}
	if _, err := a.GetObject(ctx, c.ID, "e.ics"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("object of deleted collection: %v", err)
	}
	if used, _, _ := a.Used(ctx); used != 0 {
		t.Fatalf("quota after deleting the collection: %d", used)
	}
	// The slug can be reused; the new collection has a new id.
	c2, err := a.CreateCollection(ctx, store.Collection{Kind: store.KindCalendar, Slug: "Mathe 7b"})
	if err != nil || c2.ID == c.ID {
		t.Fatalf("recreate: %+v %v", c2, err)
	}
}

func TestDAVObjects(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "obj@example.org", "password1")
	cal := collBySlug(t, a, store.KindCalendar, "calendar")
	sum := store.ObjectSummary{UID: "uid-1", Component: store.CompEvent, Start: at("2025-09-01T08:00:00Z"), End: at("2025-09-01T09:00:00Z"), Exact: true}
	data := event("uid-1", "Elternabend")
	o, created, err := a.PutObject(ctx, cal.ID, "ev 1.ics", data, store.PutObjectOptions{IfNoneMatch: []string{"*"}, Summary: sum})
	if err != nil || !created || o.ETag == "" {
		t.Fatalf("put: %+v %v %v", o, created, err)
	}
	if _, _, err := a.PutObject(ctx, cal.ID, "ev 1.ics", data, store.PutObjectOptions{IfNoneMatch: []string{"*"}, Summary: sum}); !errors.Is(err, store.ErrModified) {
		t.Fatalf("If-None-Match * on existing: %v", err)
	}
	got, err := a.GetObject(ctx, cal.ID, "ev 1.ics")
	if err != nil || !bytes.Equal(got.Data, data) || got.ETag != o.ETag || got.UID != "uid-1" || got.Component != store.CompEvent {
		t.Fatalf("get: %+v %v", got, err)
	}
	// A second resource with the same UID is refused and names the first.
	var conflict *store.UIDConflictError
	if _, _, err := a.PutObject(ctx, cal.ID, "other.ics", data, store.PutObjectOptions{Summary: sum}); !errors.As(err, &conflict) || conflict.Name != "ev 1.ics" {
		t.Fatalf("UID conflict: %v", err)
	}
	// If-Match with a stale ETag fails; with the current one it works.
	data2 := event("uid-1", "Elternabend (verschoben)")
	if _, _, err := a.PutObject(ctx, cal.ID, "ev 1.ics", data2, store.PutObjectOptions{IfMatch: []string{"nope"}, Summary: sum}); !errors.Is(err, store.ErrModified) {
		t.Fatalf("stale If-Match: %v", err)
	}
	o2, created, err := a.PutObject(ctx, cal.ID, "ev 1.ics", data2, store.PutObjectOptions{IfMatch: []string{o.ETag}, Summary: sum})
	if err != nil || created || o2.ETag == o.ETag || o2.ModSeq <= o.ModSeq {
		t.Fatalf("update: %+v %v", o2, err)
	}
	if _, _, err := a.PutObject(ctx, cal.ID, "new.ics", data2, store.PutObjectOptions{IfMatch: []string{"*"}}); !errors.Is(err, store.ErrModified) {
		t.Fatalf("If-Match * on a missing object: %v", err)
	}
	// Changing the UID frees the old one.
	sum3 := sum
	sum3.UID = "uid-3"
	if _, _, err := a.PutObject(ctx, cal.ID, "ev 1.ics", event("uid-3", "x"), store.PutObjectOptions{Summary: sum3}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.PutObject(ctx, cal.ID, "other.ics", data, store.PutObjectOptions{Summary: sum}); err != nil {
		t.Fatalf("UID freed: %v", err)
	}
	var names []string
	if err := a.ListObjects(ctx, cal.ID, store.ObjectOptions{}, func(o *store.Object) error {
		names = append(names, o.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"ev 1.ics", "other.ics"}) {
		t.Fatalf("list: %v", names)
	}
	var multi []string
	a.GetObjects(ctx, cal.ID, []string{"other.ics", "missing.ics", "ev 1.ics"}, store.ObjectOptions{Data: true}, func(o *store.Object) error {
		multi = append(multi, o.Name+":"+fmt.Sprint(len(o.Data) > 0))
		return nil
	})
	if !slices.Equal(multi, []string{"other.ics:true", "ev 1.ics:true"}) {
		t.Fatalf("multiget: %v", multi)
	}
	if err := a.DeleteObject(ctx, cal.ID, "other.ics", []string{"stale"}); !errors.Is(err, store.ErrModified) {
		t.Fatalf("delete with stale If-Match: %v", err)
	}
	if err := a.DeleteObject(ctx, cal.ID, "other.ics", nil); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteObject(ctx, cal.ID, "other.ics", nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	// Objects of one collection are not visible in another.
	tasks := collBySlug(t, a, store.KindCalendar, "tasks")
	if _, err := a.GetObject(ctx, tasks.ID, "ev 1.ics"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("object seen through another collection: %v", err)
	}
}

func TestDAVQuotaAndBlobs(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "quota@example.org", "password1")
	book := collBySlug(t, a, store.KindAddressBook, "contacts")
	big := []byte("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Big\r\nPHOTO:data:image/jpeg;base64," + strings.Repeat("QUJD", 50000) + "\r\nEND:VCARD\r\n")
	if _, _, err := a.PutObject(ctx, book.ID, "big.vcf", big, store.PutObjectOptions{Summary: store.ObjectSummary{UID: "big"}}); err != nil {
		t.Fatal(err)
	}
	used, _, _ := a.Used(ctx)
	if used != int64(len(big)) {
		t.Fatalf("used %d, want %d", used, len(big))
	}
	files := blobFiles(t, d.Dir())
	if len(files) != 1 {
		t.Fatalf("blob files: %v", files)
	}
	got, err := a.GetObject(ctx, book.ID, "big.vcf")
	if err != nil || !bytes.Equal(got.Data, big) {
		t.Fatalf("read big: %v", err)
	}
	// Replacing it with small content removes the file.
	small := []byte("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Small\r\nEND:VCARD\r\n")
	if _, _, err := a.PutObject(ctx, book.ID, "big.vcf", small, store.PutObjectOptions{Summary: store.ObjectSummary{UID: "big"}}); err != nil {
		t.Fatal(err)
	}
	if files := blobFiles(t, d.Dir()); len(files) != 0 {
		t.Fatalf("old blob left: %v", files)
	}
	if used, _, _ := a.Used(ctx); used != int64(len(small)) {
		t.Fatalf("used after replace %d", used)
	}
	if err := d.SetQuota(ctx, "quota@example.org", 1000); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.PutObject(ctx, book.ID, "big2.vcf", big, store.PutObjectOptions{}); !errors.Is(err, store.ErrOverQuota) {
		t.Fatalf("over quota: %v", err)
	}
	if files := blobFiles(t, d.Dir()); len(files) != 0 {
		t.Fatalf("refused blob left: %v", files)
	}
	if err := a.DeleteObject(ctx, book.ID, "big.vcf", nil); err != nil {
		t.Fatal(err)
	}
	if used, _, _ := a.Used(ctx); used != 0 {
		t.Fatalf("used after delete %d", used)
	}
}

func blobFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "users", "*", "blobs", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDAVSyncChanges(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "sync@example.org", "password1")
	cal := collBySlug(t, a, store.KindCalendar, "calendar")
	book := collBySlug(t, a, store.KindAddressBook, "contacts")
	put := func(coll uint32, name string) {
		t.Helper()
		if _, _, err := a.PutObject(ctx, coll, name, event(name, name), store.PutObjectOptions{Summary: store.ObjectSummary{UID: name}}); err != nil {
			t.Fatal(err)
		}
	}
	put(cal.ID, "a.ics")
	put(cal.ID, "b.ics")
	first, err := a.SyncChanges(ctx, cal.ID, 0)
	if err != nil || len(first.Updated) != 2 || len(first.Deleted) != 0 {
		t.Fatalf("initial sync: %+v %v", first, err)
	}
	put(cal.ID, "a.ics")
	put(cal.ID, "c.ics")
	put(book.ID, "x.vcf") // another collection: not reported, and its token does not move
	if err := a.DeleteObject(ctx, cal.ID, "b.ics", nil); err != nil {
		t.Fatal(err)
	}
	put(cal.ID, "d.ics")
	if err := a.DeleteObject(ctx, cal.ID, "d.ics", nil); err != nil { // created and deleted since: reported deleted
		t.Fatal(err)
	}
	next, err := a.SyncChanges(ctx, cal.ID, first.ModSeq)
	if err != nil {
		t.Fatal(err)
	}
	var upd []string
	for _, o := range next.Updated {
		upd = append(upd, o.Name)
	}
	slices.Sort(upd)
	slices.Sort(next.Deleted)
	if !slices.Equal(upd, []string{"a.ics", "c.ics"}) || !slices.Equal(next.Deleted, []string{"b.ics", "d.ics"}) {
		t.Fatalf("delta: updated %v deleted %v", upd, next.Deleted)
	}
	c, _ := a.Collection(ctx, cal.ID)
	if next.ModSeq != c.ModSeq {
		t.Fatalf("token %d, ctag %d", next.ModSeq, c.ModSeq)
	}
	if same, err := a.SyncChanges(ctx, cal.ID, next.ModSeq); err != nil || len(same.Updated)+len(same.Deleted) != 0 {
		t.Fatalf("no changes: %+v %v", same, err)
	}
	if _, err := a.SyncChanges(ctx, cal.ID, next.ModSeq+1000); !errors.Is(err, store.ErrStaleSyncToken) {
		t.Fatalf("future token: %v", err)
	}
	// Re-creating a deleted object reports it as updated, not deleted.
	put(cal.ID, "b.ics")
	again, _ := a.SyncChanges(ctx, cal.ID, next.ModSeq)
	if len(again.Updated) != 1 || again.Updated[0].Name != "b.ics" || len(again.Deleted) != 0 {
		t.Fatalf("recreated: %+v", again)
	}
}

func TestDAVRangeIndex(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "range@example.org", "password1")
	cal, err := a.CreateCollection(ctx, store.Collection{Kind: store.KindCalendar, Slug: "mixed"})
	if err != nil {
		t.Fatal(err)
	}
	objs := []struct {
		name string
		sum  store.ObjectSummary
	}{
		{"sept.ics", store.ObjectSummary{Component: store.CompEvent, Start: at("2025-09-01T08:00:00Z"), End: at("2025-09-01T09:00:00Z"), Exact: true}},
		{"oct.ics", store.ObjectSummary{Component: store.CompEvent, Start: at("2025-10-01T08:00:00Z"), End: at("2025-10-01T09:00:00Z"), Exact: true}},
		// A weekly timetable lesson without end: unbounded.
		{"weekly.ics", store.ObjectSummary{Component: store.CompEvent, Start: at("2025-09-08T07:45:00Z")}},
		// A recurring event that ended.
		{"over.ics", store.ObjectSummary{Component: store.CompEvent, Start: at("2024-01-01T10:00:00Z"), End: at("2024-06-01T11:00:00Z")}},
		{"todo.ics", store.ObjectSummary{Component: store.CompTodo}},
	}
	for _, o := range objs {
		o.sum.UID = o.name
		if _, _, err := a.PutObject(ctx, cal.ID, o.name, event(o.name, o.name), store.PutObjectOptions{Summary: o.sum}); err != nil {
			t.Fatal(err)
		}
	}
	query := func(comp, start, end string) []string {
		t.Helper()
		q := store.RangeQuery{Component: comp}
		if start != "" {
			q.Start = at(start)
		}
		if end != "" {
			q.End = at(end)
		}
		var out []string
		err := a.ObjectsInRange(ctx, cal.ID, q, store.ObjectOptions{}, func(o *store.Object) error {
			if o.Summary == nil || o.Summary.UID != o.Name {
				t.Errorf("summary of %s: %+v", o.Name, o.Summary)
			}
			out = append(out, o.Name)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		comp, start, end string
		want             []string
	}{
		{store.CompEvent, "2025-09-01T00:00:00Z", "2025-09-02T00:00:00Z", []string{"sept.ics"}},
		{store.CompEvent, "2025-09-15T00:00:00Z", "2025-10-15T00:00:00Z", []string{"oct.ics", "weekly.ics"}},
		{store.CompEvent, "2030-01-01T00:00:00Z", "2030-02-01T00:00:00Z", []string{"weekly.ics"}},
		{store.CompEvent, "2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z", []string{"over.ics"}},
		{store.CompEvent, "2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z", nil},
		{store.CompTodo, "2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z", []string{"todo.ics"}},
		{"", "", "", []string{"oct.ics", "over.ics", "sept.ics", "todo.ics", "weekly.ics"}},
	} {
		if got := query(tc.comp, tc.start, tc.end); !slices.Equal(got, tc.want) {
			t.Errorf("%s %s..%s: got %v, want %v", tc.comp, tc.start, tc.end, got, tc.want)
		}
	}
	// Moving an event moves it in the index.
	moved := objs[0].sum
	moved.UID, moved.Start, moved.End = "sept.ics", at("2026-01-01T08:00:00Z"), at("2026-01-01T09:00:00Z")
	if _, _, err := a.PutObject(ctx, cal.ID, "sept.ics", event("sept.ics", "x"), store.PutObjectOptions{Summary: moved}); err != nil {
		t.Fatal(err)
	}
	if got := query(store.CompEvent, "2025-09-01T00:00:00Z", "2025-09-02T00:00:00Z"); len(got) != 0 {
		t.Errorf("moved event still in its old place: %v", got)
	}
	if err := a.DeleteObject(ctx, cal.ID, "weekly.ics", nil); err != nil {
		t.Fatal(err)
	}
	if got := query(store.CompEvent, "2030-01-01T00:00:00Z", "2030-02-01T00:00:00Z"); len(got) != 0 {
		t.Errorf("deleted event still found: %v", got)
	}
}

func TestDAVConcurrentPuts(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "conc@example.org", "password1")
	cal := collBySlug(t, a, store.KindCalendar, "calendar")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			name := fmt.Sprintf("e%d.ics", i)
			_, _, err := a.PutObject(ctx, cal.ID, name, event(name, name), store.PutObjectOptions{Summary: store.ObjectSummary{UID: name, Component: store.CompEvent}})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	res, err := a.SyncChanges(ctx, cal.ID, 0)
	if err != nil || len(res.Updated) != 64 {
		t.Fatalf("after concurrent puts: %d %v", len(res.Updated), err)
	}
}

func TestDAVMarkersNeverInClear(t *testing.T) {
	d := Open(t)
	a, _ := User(t, d, "davmarker@example.org", "password1")
	const (
		summary  = "MarkerEventSummaryQuux"
		contact  = "MarkerContactNameZyzzy"
		collName = "MarkerCalendarNameFrob"
		slug     = "MarkerSlugBlarg"
		objName  = "MarkerObjectNameWibble"
		uid      = "MarkerUIDPlugh"
		deadProp = "MarkerDeadPropXyzzy"
	)
	cal, err := a.CreateCollection(ctx, store.Collection{Kind: store.KindCalendar, Slug: slug, DisplayName: collName,
		Dead: map[string]string{"{urn:x}note": deadProp}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.PutObject(ctx, cal.ID, objName+".ics", event(uid, summary), store.PutObjectOptions{Summary: store.ObjectSummary{UID: uid, Component: store.CompEvent}}); err != nil {
		t.Fatal(err)
	}
	book := collBySlug(t, a, store.KindAddressBook, "contacts")
	card := "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:" + contact + "\r\nNOTE:" + strings.Repeat(contact+" ", 10000) + "\r\nEND:VCARD\r\n"
	if _, _, err := a.PutObject(ctx, book.ID, objName+".vcf", []byte(card), store.PutObjectOptions{Summary: store.ObjectSummary{UID: uid}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.PutObject(ctx, book.ID, "small.vcf", []byte("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:"+contact+"\r\nEND:VCARD\r\n"), store.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteObject(ctx, book.ID, "small.vcf", nil); err != nil { // a tombstone keeps the name: sealed
		t.Fatal(err)
	}
	if len(blobFiles(t, d.Dir())) != 1 {
		t.Fatal("the large contact should be in a blob file")
	}
	a.Close()
	d.Close()
	assertNoFileContains(t, d.Dir(), summary, contact, collName, slug, objName, uid, deadProp)
	if _, err := os.Stat(d.Dir()); err != nil {
		t.Fatal(err)
	}
}
