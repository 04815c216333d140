package caldav

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	ical "github.com/emersion/go-ical"
	vcard "github.com/emersion/go-vcard"
	wcaldav "github.com/emersion/go-webdav/caldav"
	wcarddav "github.com/emersion/go-webdav/carddav"
)

// TestDiscovery follows what clients do: current-user-principal from the
// root, then the home sets, then the collections.
func TestDiscovery(t *testing.T) {
	e := newEnv(t)
	cc := e.caldav(anna, annaPass)
	principal, err := cc.FindCurrentUserPrincipal(ctx)
	if err != nil || principal != "/dav/principals/anna@example.org/" {
		t.Fatalf("principal %q: %v", principal, err)
	}
	home, err := cc.FindCalendarHomeSet(ctx, principal)
	if err != nil || home != "/dav/calendars/anna@example.org/" {
		t.Fatalf("calendar home %q: %v", home, err)
	}
	cals, err := cc.FindCalendars(ctx, home)
	if err != nil || len(cals) != 2 {
		t.Fatalf("calendars %+v: %v", cals, err)
	}
	if cals[0].Path != annaCal || cals[0].Name != "Kalender" || !slices.Equal(cals[0].SupportedComponentSet, []string{"VEVENT"}) ||
		cals[0].MaxResourceSize != 256<<10 {
		t.Fatalf("calendar: %+v", cals[0])
	}
	if cals[1].Path != annaTasks || !slices.Equal(cals[1].SupportedComponentSet, []string{"VTODO"}) {
		t.Fatalf("task list: %+v", cals[1])
	}
	cd := e.carddav(anna, annaPass)
	if err := cd.HasSupport(ctx); err != nil {
		t.Fatal(err)
	}
	abHome, err := cd.FindAddressBookHomeSet(ctx, principal)
	if err != nil || abHome != "/dav/addressbooks/anna@example.org/" {
		t.Fatalf("address book home %q: %v", abHome, err)
	}
	books, err := cd.FindAddressBooks(ctx, abHome)
	if err != nil || len(books) != 1 || books[0].Path != annaBook || books[0].Name != "Kontakte" ||
		!books[0].SupportsAddressData("text/vcard", "4.0") {
		t.Fatalf("address books %+v: %v", books, err)
	}
	// OPTIONS advertises CalDAV and CardDAV, not scheduling.
	r := e.do(http.MethodOptions, "/dav/", nil, "")
	dav := r.hdr.Get("DAV")
	if !strings.Contains(dav, "calendar-access") || !strings.Contains(dav, "addressbook") || strings.Contains(dav, "auto-schedule") {
		t.Fatalf("DAV header %q", dav)
	}
	// The principal also lists the calendar user address (iOS wants it).
	e.do("PROPFIND", "/dav/principals/anna@example.org/", map[string]string{"Depth": "0"},
		`<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><c:calendar-user-address-set/><d:displayname/></d:prop></d:propfind>`).
		expect(t, http.StatusMultiStatus, "mailto:anna@example.org")
	// Unauthenticated requests never reach the handler.
	req, _ := http.NewRequest("PROPFIND", e.srv.URL+"/dav/", nil)
	resp, err := e.srv.Client().Do(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
}

func TestEventsCRUD(t *testing.T) {
	e := newEnv(t)
	cc := e.caldav(anna, annaPass)
	cal := ical.NewCalendar()
	cal.Props.SetText(ical.PropVersion, "2.0")
	cal.Props.SetText(ical.PropProductID, "-//kreide//test//EN")
	ev := ical.NewEvent()
	ev.Props.SetText(ical.PropUID, "elternabend-1")
	ev.Props.SetDateTime(ical.PropDateTimeStamp, time.Now().UTC())
	ev.Props.SetDateTime(ical.PropDateTimeStart, time.Date(2025, 9, 10, 18, 0, 0, 0, time.UTC))
	ev.Props.SetDateTime(ical.PropDateTimeEnd, time.Date(2025, 9, 10, 20, 0, 0, 0, time.UTC))
	ev.Props.SetText(ical.PropSummary, "Elternabend 7b")
	cal.Children = append(cal.Children, ev.Component)
	path := annaCal + "elternabend-1.ics"
	put, err := cc.PutCalendarObject(ctx, path, cal)
	if err != nil || put.ETag == "" {
		t.Fatalf("put: %+v %v", put, err)
	}
	got, err := cc.GetCalendarObject(ctx, path)
	if err != nil || got.ETag != put.ETag {
		t.Fatalf("get: %+v %v", got, err)
	}
	if s, _ := got.Data.Events()[0].Props.Text(ical.PropSummary); s != "Elternabend 7b" {
		t.Fatalf("summary %q", s)
	}
	// Update with a stale ETag fails; with the right one it works.
	body := ics(vevent("elternabend-1", "Elternabend 7b (Aula)", ":20250910T180000Z", ":20250910T200000Z")...)
	e.put(path, icsType, body, map[string]string{"If-Match": `"stale"`}).expect(t, http.StatusPreconditionFailed)
	r := e.put(path, icsType, body, map[string]string{"If-Match": `"` + put.ETag + `"`})
	r.expect(t, http.StatusNoContent)
	if r.hdr.Get("ETag") == `"`+put.ETag+`"` || r.hdr.Get("ETag") == "" {
		t.Fatalf("ETag after update: %q", r.hdr.Get("ETag"))
	}
	// Conditional GET.
	e.do(http.MethodGet, path, map[string]string{"If-None-Match": r.hdr.Get("ETag")}, "").expect(t, http.StatusNotModified)
	got2 := e.do(http.MethodGet, path, nil, "")
	got2.expect(t, http.StatusOK, "(Aula)")
	if got2.body != body {
		t.Fatal("content not stored byte for byte")
	}
	// The collection's ctag moved.
	prop := `<d:propfind xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/"><d:prop><cs:getctag/></d:prop></d:propfind>`
	before := e.do("PROPFIND", annaCal, map[string]string{"Depth": "0"}, prop).body
	e.do(http.MethodDelete, path, map[string]string{"If-Match": `"nope"`}, "").expect(t, http.StatusPreconditionFailed)
	e.do(http.MethodDelete, path, nil, "").expect(t, http.StatusNoContent)
	e.do(http.MethodGet, path, nil, "").expect(t, http.StatusNotFound)
	e.do(http.MethodDelete, path, nil, "").expect(t, http.StatusNotFound)
	after := e.do("PROPFIND", annaCal, map[string]string{"Depth": "0"}, prop).body
	if before == after || !strings.Contains(after, "getctag") {
		t.Fatalf("ctag did not change:\n%s\n%s", before, after)
	}
	// A task goes to the task list.
	todo := ics("BEGIN:VTODO", "UID:todo-1", "DTSTAMP:20250801T000000Z", "SUMMARY:Klassenarbeit korrigieren", "DUE:20250920T120000Z", "END:VTODO")
	e.put(annaTasks+"todo-1.ics", icsType, todo, map[string]string{"If-None-Match": "*"}).expect(t, http.StatusCreated)
	e.put(annaTasks+"todo-1.ics", icsType, todo, map[string]string{"If-None-Match": "*"}).expect(t, http.StatusPreconditionFailed)
}

func TestContactsCRUD(t *testing.T) {
	e := newEnv(t)
	cd := e.carddav(anna, annaPass)
	card := vcard.Card{}
	card.SetValue(vcard.FieldVersion, "4.0")
	card.SetValue(vcard.FieldUID, "c-1")
	card.SetValue(vcard.FieldFormattedName, "Erika Mustermann")
	card.AddName(&vcard.Name{FamilyName: "Mustermann", GivenName: "Erika"})
	card.Add(vcard.FieldEmail, &vcard.Field{Value: "erika@example.org", Params: vcard.Params{"TYPE": {"work"}}})
	put, err := cd.PutAddressObject(ctx, annaBook+"c-1.vcf", card)
	if err != nil || put.ETag == "" {
		t.Fatalf("put: %+v %v", put, err)
	}
	e.put(annaBook+"c-2.vcf", vcfType, vcardText("c-2", "Max Mustermann", "TEL;TYPE=cell:+49 170 1234567"), nil).expect(t, http.StatusCreated)
	e.put(annaBook+"c-3.vcf", vcfType, vcardText("c-3", "Hausmeister Krause"), nil).expect(t, http.StatusCreated)
	got, err := cd.GetAddressObject(ctx, annaBook+"c-1.vcf")
	if err != nil || got.Card.PreferredValue(vcard.FieldFormattedName) != "Erika Mustermann" || got.ETag != put.ETag {
		t.Fatalf("get: %+v %v", got, err)
	}
	// Case-insensitive search, as Apple Contacts does.
	res, err := cd.QueryAddressBook(ctx, annaBook, &wcarddav.AddressBookQuery{
		DataRequest: wcarddav.AddressDataRequest{Props: []string{vcard.FieldFormattedName}},
		PropFilters: []wcarddav.PropFilter{{Name: vcard.FieldFormattedName, TextMatches: []wcarddav.TextMatch{{Text: "mustermann"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range res {
		names = append(names, o.Card.PreferredValue(vcard.FieldFormattedName))
		if o.Card.Value(vcard.FieldUID) != "" {
			t.Errorf("address-data asked for FN only, got UID too")
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"Erika Mustermann", "Max Mustermann"}) {
		t.Fatalf("query: %v", names)
	}
	// A param-filter: only cards with a cell phone.
	q := `<c:addressbook-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:carddav"><d:prop><d:getetag/></d:prop>
<c:filter><c:prop-filter name="TEL"><c:param-filter name="TYPE"><c:text-match match-type="equals">CELL</c:text-match></c:param-filter></c:prop-filter></c:filter></c:addressbook-query>`
	if h := hrefs(e.do("REPORT", annaBook, map[string]string{"Depth": "1"}, q).body); !slices.Equal(h, []string{annaBook + "c-2.vcf"}) {
		t.Fatalf("param-filter: %v", h)
	}
	// Limit: 507 for the collection when there are more.
	q = `<c:addressbook-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:carddav"><d:prop><d:getetag/></d:prop><c:filter/><c:limit><c:nresults>1</c:nresults></c:limit></c:addressbook-query>`
	r := e.do("REPORT", annaBook, map[string]string{"Depth": "1"}, q)
	if len(hrefs(r.body)) != 1 || !strings.Contains(r.body, "number-of-matches-within-limits") {
		t.Fatalf("limit: %s", r.body)
	}
	objs, err := cd.MultiGetAddressBook(ctx, annaBook, &wcarddav.AddressBookMultiGet{
		Paths: []string{annaBook + "c-1.vcf", annaBook + "c-3.vcf"}, DataRequest: wcarddav.AddressDataRequest{AllProp: true}})
	if err != nil || len(objs) != 2 || objs[1].Card.PreferredValue(vcard.FieldFormattedName) != "Hausmeister Krause" {
		t.Fatalf("multiget: %+v %v", objs, err)
	}
	e.do(http.MethodDelete, annaBook+"c-3.vcf", nil, "").expect(t, http.StatusNoContent)
	if _, err := cd.GetAddressObject(ctx, annaBook+"c-3.vcf"); err == nil {
		t.Fatal("deleted contact still there")
	}
}

func TestMultiget(t *testing.T) {
	e := newEnv(t)
	for _, n := range []string{"a", "b", "c"} {
		e.put(annaCal+n+".ics", icsType, ics(vevent(n, "Event "+n, ":20250901T080000Z", ":20250901T090000Z")...), nil).expect(t, http.StatusCreated)
	}
	cc := e.caldav(anna, annaPass)
	objs, err := cc.MultiGetCalendar(ctx, annaCal, &wcaldav.CalendarMultiGet{
		Paths: []string{annaCal + "a.ics", annaCal + "c.ics"}, CompRequest: wcaldav.CalendarCompRequest{AllProps: true, AllComps: true}})
	if err != nil || len(objs) != 2 || objs[0].Path != annaCal+"a.ics" || objs[1].ETag == "" {
		t.Fatalf("multiget: %+v %v", objs, err)
	}
	// A missing member and one of another user come back with their status.
	body := `<c:calendar-multiget xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/><c:calendar-data/></d:prop>
<d:href>` + annaCal + `b.ics</d:href><d:href>` + annaCal + `missing.ics</d:href><d:href>/dav/calendars/ben@example.org/calendar/x.ics</d:href></c:calendar-multiget>`
	r := e.do("REPORT", annaCal, map[string]string{"Depth": "1"}, body)
	r.expect(t, http.StatusMultiStatus, "Event b", "404 Not Found", "403 Forbidden")
	// Partial retrieval: only UID and SUMMARY of the VEVENT.
	body = `<c:calendar-multiget xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><c:calendar-data>
<c:comp name="VCALENDAR"><c:prop name="VERSION"/><c:comp name="VEVENT"><c:prop name="UID"/><c:prop name="SUMMARY"/></c:comp></c:comp>
</c:calendar-data></d:prop><d:href>` + annaCal + `c.ics</d:href></c:calendar-multiget>`
	r = e.do("REPORT", annaCal, map[string]string{"Depth": "1"}, body)
	r.expect(t, http.StatusMultiStatus, "SUMMARY:Event c", "UID:c")
	if strings.Contains(r.body, "DTSTART") || strings.Contains(r.body, "PRODID") {
		t.Fatalf("partial retrieval returned too much:\n%s", r.body)
	}
}

func TestSyncCollection(t *testing.T) {
	e := newEnv(t)
	// go-webdav's carddav client speaks plain RFC 6578, which works on
	// calendars as well.
	cd := e.carddav(anna, annaPass)
	e.put(annaCal+"a.ics", icsType, ics(vevent("a", "A", ":20250901T080000Z", ":20250901T090000Z")...), nil).expect(t, http.StatusCreated)
	e.put(annaCal+"b.ics", icsType, ics(vevent("b", "B", ":20250901T080000Z", ":20250901T090000Z")...), nil).expect(t, http.StatusCreated)
	first, err := cd.SyncCollection(ctx, annaCal, &wcarddav.SyncQuery{})
	if err != nil || len(first.Updated) != 2 || len(first.Deleted) != 0 || first.SyncToken == "" {
		t.Fatalf("initial: %+v %v", first, err)
	}
	e.put(annaCal+"a.ics", icsType, ics(vevent("a", "A2", ":20250901T080000Z", ":20250901T090000Z")...), nil).expect(t, http.StatusNoContent)
	e.do(http.MethodDelete, annaCal+"b.ics", nil, "").expect(t, http.StatusNoContent)
	e.put(annaCal+"c d.ics", icsType, ics(vevent("c", "C", ":20250901T080000Z", ":20250901T090000Z")...), nil).expect(t, http.StatusCreated)
	e.put(annaTasks+"t.ics", icsType, ics("BEGIN:VTODO", "UID:t", "DTSTAMP:20250801T000000Z", "END:VTODO"), nil).expect(t, http.StatusCreated)
	next, err := cd.SyncCollection(ctx, annaCal, &wcarddav.SyncQuery{SyncToken: first.SyncToken})
	if err != nil {
		t.Fatal(err)
	}
	var upd []string
	for _, o := range next.Updated {
		upd = append(upd, o.Path)
		if o.ETag == "" {
			t.Errorf("no etag for %s", o.Path)
		}
	}
	slices.Sort(upd)
	if !slices.Equal(upd, []string{annaCal + "a.ics", annaCal + "c d.ics"}) || !slices.Equal(next.Deleted, []string{annaCal + "b.ics"}) {
		t.Fatalf("delta: updated %v deleted %v", upd, next.Deleted)
	}
	same, err := cd.SyncCollection(ctx, annaCal, &wcarddav.SyncQuery{SyncToken: next.SyncToken})
	if err != nil || len(same.Updated)+len(same.Deleted) != 0 || same.SyncToken != next.SyncToken {
		t.Fatalf("nothing changed: %+v %v", same, err)
	}
	// A token of another collection or a made-up one is refused.
	body := `<d:sync-collection xmlns:d="DAV:"><d:sync-token>` + next.SyncToken + `</d:sync-token><d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>`
	e.do("REPORT", annaTasks, nil, body).expect(t, http.StatusForbidden, "valid-sync-token")
	body = strings.Replace(body, next.SyncToken, "http://kreide.org/ns/sync/1-999999", 1)
	e.do("REPORT", annaCal, nil, body).expect(t, http.StatusForbidden, "valid-sync-token")
	// With calendar-data in the prop the delta carries the content.
	body = `<d:sync-collection xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:sync-token>` + first.SyncToken + `</d:sync-token><d:sync-level>1</d:sync-level><d:prop><d:getetag/><c:calendar-data/></d:prop></d:sync-collection>`
	e.do("REPORT", annaCal, nil, body).expect(t, http.StatusMultiStatus, "SUMMARY:A2", "SUMMARY:C")
}
