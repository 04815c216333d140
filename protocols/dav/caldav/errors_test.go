package caldav

import (
	"context"
	"net/http"
	"strings"
	"testing"

	wcaldav "github.com/emersion/go-webdav/caldav"
)

func TestPropPatch(t *testing.T) {
	e := newEnv(t)
	set := `<d:propertyupdate xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:i="http://apple.com/ns/ical/" xmlns:x="urn:example:x">
<d:set><d:prop><d:displayname>Mathe &amp; Physik</d:displayname><i:calendar-color>#FF5733FF</i:calendar-color><i:calendar-order>3</i:calendar-order>
<c:calendar-description>Unterricht</c:calendar-description><x:note><x:b attr="1">fett</x:b> und mehr</x:note></d:prop></d:set>
</d:propertyupdate>`
	e.do("PROPPATCH", annaCal, nil, set).expect(t, http.StatusMultiStatus, "200 OK")
	get := `<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:i="http://apple.com/ns/ical/" xmlns:x="urn:example:x">
<d:prop><d:displayname/><i:calendar-color/><i:calendar-order/><c:calendar-description/><x:note/><x:unknown/></d:prop></d:propfind>`
	r := e.do("PROPFIND", annaCal, map[string]string{"Depth": "0"}, get)
	r.expect(t, http.StatusMultiStatus, "Mathe &amp; Physik", "#FF5733FF", ">3<", "Unterricht", `attr="1"`, "fett</b> und mehr", "404 Not Found")
	// go-webdav's client sees the new name too.
	cals, err := e.caldav(anna, annaPass).FindCalendars(ctx, "/dav/calendars/anna@example.org/")
	if err != nil || cals[0].Name != "Mathe & Physik" || cals[0].Description != "Unterricht" {
		t.Fatalf("calendars: %+v %v", cals, err)
	}
	// A protected property fails the whole update: 403 for it, 424 for the others.
	bad := `<d:propertyupdate xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/"><d:set><d:prop><d:displayname>Neu</d:displayname><cs:getctag>1</cs:getctag></d:prop></d:set></d:propertyupdate>`
	e.do("PROPPATCH", annaCal, nil, bad).expect(t, http.StatusMultiStatus, "403 Forbidden", "424 Failed Dependency")
	e.do("PROPFIND", annaCal, map[string]string{"Depth": "0"}, get).expect(t, http.StatusMultiStatus, "Mathe &amp; Physik")
	// Remove.
	rm := `<d:propertyupdate xmlns:d="DAV:" xmlns:x="urn:example:x"><d:remove><d:prop><x:note/></d:prop></d:remove></d:propertyupdate>`
	e.do("PROPPATCH", annaCal, nil, rm).expect(t, http.StatusMultiStatus, "200 OK")
	if r := e.do("PROPFIND", annaCal, map[string]string{"Depth": "0"}, get); strings.Contains(r.body, "fett") {
		t.Fatalf("removed property still there:\n%s", r.body)
	}
	// allprop returns dead properties but not the quota ones (RFC 4331).
	r = e.do("PROPFIND", annaCal, map[string]string{"Depth": "0"}, `<d:propfind xmlns:d="DAV:"><d:allprop/></d:propfind>`)
	r.expect(t, http.StatusMultiStatus, "calendar-color", "getctag", "sync-token", "supported-calendar-component-set")
	if strings.Contains(r.body, "quota-used-bytes") {
		t.Fatal("allprop returned quota properties")
	}
}

func TestMkcalendarAndDelete(t *testing.T) {
	e := newEnv(t)
	mk := `<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:i="http://apple.com/ns/ical/"><d:set><d:prop>
<d:displayname>Klassenfahrt</d:displayname><i:calendar-color>#00FF00</i:calendar-color>
<c:supported-calendar-component-set><c:comp name="VEVENT"/><c:comp name="VTODO"/></c:supported-calendar-component-set>
<c:calendar-timezone>BEGIN:VCALENDAR&#13;
PRODID:x&#13;
VERSION:2.0&#13;
BEGIN:VTIMEZONE&#13;
TZID:Europe/Berlin&#13;
END:VTIMEZONE&#13;
END:VCALENDAR&#13;
</c:calendar-timezone></d:prop></d:set></c:mkcalendar>`
	path := "/dav/calendars/anna@example.org/klassenfahrt-2025/"
	e.do("MKCALENDAR", path, nil, mk).expect(t, http.StatusCreated)
	e.do("MKCALENDAR", path, nil, mk).expect(t, http.StatusMethodNotAllowed)
	cals, err := e.caldav(anna, annaPass).FindCalendars(ctx, "/dav/calendars/anna@example.org/")
	if err != nil || len(cals) != 3 || cals[2].Name != "Klassenfahrt" || len(cals[2].SupportedComponentSet) != 2 {
		t.Fatalf("calendars: %+v %v", cals, err)
	}
	// Floating times in it are read in its calendar-timezone.
	e.put(path+"abfahrt.ics", icsType, ics(vevent("abfahrt", "Abfahrt", ":20250922T070000", ":20250922T080000")...), nil).expect(t, http.StatusCreated)
	r := e.do("REPORT", path, map[string]string{"Depth": "1"}, calQuery("<d:getetag/>", timeRangeFilter("VEVENT", "20250922T050000Z", "20250922T053000Z")))
	if len(hrefs(r.body)) != 1 {
		t.Fatalf("floating time in the calendar's zone:\n%s", r.body)
	}
	// Extended MKCOL makes an address book; the wrong resource type is refused.
	mkcol := `<d:mkcol xmlns:d="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav"><d:set><d:prop>
<d:resourcetype><d:collection/><card:addressbook/></d:resourcetype><d:displayname>Eltern 7b</d:displayname></d:prop></d:set></d:mkcol>`
	e.do("MKCOL", "/dav/addressbooks/anna@example.org/eltern-7b/", nil, mkcol).expect(t, http.StatusCreated)
	e.do("MKCOL", "/dav/calendars/anna@example.org/falsch/", nil, mkcol).expect(t, http.StatusForbidden, "valid-resourcetype")
	books, err := e.carddav(anna, annaPass).FindAddressBooks(ctx, "/dav/addressbooks/anna@example.org/")
	if err != nil || len(books) != 2 || books[1].Name != "Eltern 7b" {
		t.Fatalf("address books: %+v %v", books, err)
	}
	// Only collections in a home can be made.
	e.do("MKCALENDAR", "/dav/calendars/anna@example.org/x/y/", nil, "").expect(t, http.StatusForbidden)
	e.do("MKCALENDAR", "/dav/addressbooks/anna@example.org/x/", nil, "").expect(t, http.StatusForbidden)
	e.do(http.MethodDelete, path, nil, "").expect(t, http.StatusNoContent)
	e.do("PROPFIND", path, map[string]string{"Depth": "0"}, "").expect(t, http.StatusNotFound)
	e.do(http.MethodDelete, "/dav/calendars/anna@example.org/", nil, "").expect(t, http.StatusForbidden)
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	ev := ics(vevent("u1", "Erster", ":20250901T080000Z", ":20250901T090000Z")...)
	e.put(annaCal+"u1.ics", icsType, ev, nil).expect(t, http.StatusCreated)
	ctag := func() string {
		return e.do("PROPFIND", annaCal, map[string]string{"Depth": "0"},
			`<d:propfind xmlns:d="DAV:"><d:prop><d:sync-token/></d:prop></d:propfind>`).body
	}
	before := ctag()
	for _, tc := range []struct {
		name, path, ctype, body string
		code                    int
		cond                    string
	}{
		{"not iCalendar", annaCal + "x.ics", icsType, "hello", 400, "valid-calendar-data"},
		{"unterminated", annaCal + "x.ics", icsType, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n", 400, "valid-calendar-data"},
		{"bad date", annaCal + "x.ics", icsType, ics(vevent("x", "x", ":2025-09-01", ":20250901T090000Z")...), 400, "valid-calendar-data"},
		{"bad RRULE", annaCal + "x.ics", icsType, ics(vevent("x", "x", ":20250901T080000Z", ":20250901T090000Z", "RRULE:FREQ=SOMETIMES")...), 400, "valid-calendar-data"},
		{"no UID", annaCal + "x.ics", icsType, ics("BEGIN:VEVENT", "DTSTART:20250901T080000Z", "END:VEVENT"), 400, "valid-calendar-object-resource"},
		{"METHOD", annaCal + "x.ics", icsType, strings.Replace(ev, "VERSION:2.0", "VERSION:2.0\r\nMETHOD:REQUEST", 1), 400, "valid-calendar-object-resource"},
		{"two calendars", annaCal + "x.ics", icsType, ev + ev, 400, "valid-calendar-data"},
		{"deep nesting", annaCal + "x.ics", icsType, strings.Repeat("BEGIN:X\r\n", 1000), 400, "valid-calendar-data"},
		{"task in the event calendar", annaCal + "x.ics", icsType, ics("BEGIN:VTODO", "UID:t", "DTSTAMP:20250801T000000Z", "END:VTODO"), 403, "supported-calendar-component"},
		{"UID of another resource", annaCal + "other.ics", icsType, ev, 409, "no-uid-conflict"},
		{"vCard as calendar", annaCal + "x.ics", vcfType, vcardText("v", "V"), 415, "supported-calendar-data"},
		{"too large", annaCal + "x.ics", icsType, ics(vevent("big", strings.Repeat("x", 300<<10), ":20250901T080000Z", ":20250901T090000Z")...), 413, "max-resource-size"},
		{"bad vCard", annaBook + "x.vcf", vcfType, "BEGIN:VCARD\r\nFN:x\r\nEND:VCARD\r\n", 400, "valid-address-data"},
		{"two vCards", annaBook + "x.vcf", vcfType, vcardText("a", "A") + vcardText("b", "B"), 400, "valid-address-data"},
		{"calendar as vCard", annaBook + "x.vcf", icsType, ev, 415, "supported-address-data"},
	} {
		r := e.put(tc.path, tc.ctype, tc.body, nil)
		if r.code != tc.code || !strings.Contains(r.body, tc.cond) {
			t.Errorf("%s: %d %s", tc.name, r.code, r.body)
		}
	}
	if r := e.put(annaCal+"other.ics", icsType, ev, nil); !strings.Contains(r.body, "<d:href>"+annaCal+"u1.ics</d:href>") {
		t.Errorf("no-uid-conflict names the other resource: %s", r.body)
	}
	if after := ctag(); after != before {
		t.Errorf("refused requests changed the calendar")
	}
	e.do(http.MethodGet, annaCal+"x.ics", nil, "").expect(t, http.StatusNotFound)
	if used, _, _ := e.anna.Used(ctx); used != int64(len(ev)) {
		t.Errorf("quota used %d after refused writes", used)
	}

	// XML: DOCTYPE, entities and deep nesting are refused; so is Depth: infinity.
	e.do("PROPFIND", "/dav/", map[string]string{"Depth": "0"},
		`<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "boom">]><d:propfind xmlns:d="DAV:"><d:prop><d:displayname>&x;</d:displayname></d:prop></d:propfind>`).
		expect(t, http.StatusBadRequest, "DOCTYPE")
	deep := strings.Repeat("<a>", 60) + strings.Repeat("</a>", 60)
	e.do("PROPFIND", "/dav/", map[string]string{"Depth": "0"}, `<d:propfind xmlns:d="DAV:"><d:prop>`+deep+`</d:prop></d:propfind>`).
		expect(t, http.StatusBadRequest, "deeply")
	e.do("PROPFIND", annaCal, map[string]string{"Depth": "infinity"}, "").expect(t, http.StatusForbidden, "propfind-finite-depth")
	e.do("REPORT", annaCal, nil, `<d:expand-property xmlns:d="DAV:"/>`).expect(t, http.StatusForbidden, "supported-report")
	e.do("PATCH", annaCal+"u1.ics", nil, "").expect(t, http.StatusMethodNotAllowed)
	e.do("PROPFIND", "/dav/nothing/", nil, "").expect(t, http.StatusNotFound)
	e.do(http.MethodPut, "/dav/calendars/anna@example.org/missing/x.ics", map[string]string{"Content-Type": icsType}, ev).expect(t, http.StatusConflict)
}

// TestOtherUsersRefused: every path with another user's name is refused,
// whatever the method, and a user's reports never reach another's objects.
func TestOtherUsersRefused(t *testing.T) {
	e := newEnv(t)
	ev := ics(vevent("geheim", "Geheim", ":20250901T080000Z", ":20250901T090000Z")...)
	e.put(annaCal+"geheim.ics", icsType, ev, nil).expect(t, http.StatusCreated)
	asBen := map[string]string{"user": ben, "pass": benPass, "Depth": "1"}
	for _, tc := range []struct{ method, path, body string }{
		{"PROPFIND", "/dav/principals/anna@example.org/", ""},
		{"PROPFIND", "/dav/calendars/anna@example.org/", ""},
		{"PROPFIND", annaCal, ""},
		{"GET", annaCal + "geheim.ics", ""},
		{"PUT", annaCal + "neu.ics", ev},
		{"DELETE", annaCal + "geheim.ics", ""},
		{"DELETE", annaCal, ""},
		{"MKCALENDAR", "/dav/calendars/anna@example.org/neu/", ""},
		{"PROPPATCH", annaCal, `<d:propertyupdate xmlns:d="DAV:"><d:set><d:prop><d:displayname>x</d:displayname></d:prop></d:set></d:propertyupdate>`},
		{"REPORT", annaCal, calQuery("<d:getetag/>", `<c:comp-filter name="VCALENDAR"/>`)},
		{"PROPFIND", annaBook, ""},
		{"PROPFIND", "/dav/calendars/ANNA@example.org/calendar/", ""},
	} {
		h := map[string]string{"user": ben, "pass": benPass, "Content-Type": icsType}
		if r := e.do(tc.method, tc.path, h, tc.body); r.code != http.StatusForbidden || strings.Contains(r.body, "Geheim") {
			t.Errorf("%s %s as ben: %d %s", tc.method, tc.path, r.code, r.body)
		}
	}
	// Ben's own discovery shows only his things.
	r := e.do("PROPFIND", "/dav/calendars/", asBen, "")
	if strings.Contains(r.body, "anna") || !strings.Contains(r.body, "/dav/calendars/ben@example.org/") {
		t.Errorf("ben's homes listing:\n%s", r.body)
	}
	cc := e.caldav(ben, benPass)
	if _, err := cc.MultiGetCalendar(context.Background(), "/dav/calendars/ben@example.org/calendar/",
		&wcaldav.CalendarMultiGet{Paths: []string{annaCal + "geheim.ics"}}); err == nil {
		t.Error("multiget of anna's event as ben succeeded")
	}
	if got, _ := e.anna.GetObject(ctx, 1, "geheim.ics"); got == nil || !strings.Contains(string(got.Data), "Geheim") {
		t.Error("anna's event changed")
	}
}

func TestQuota(t *testing.T) {
	e := newEnv(t)
	quota := `<d:propfind xmlns:d="DAV:"><d:prop><d:quota-available-bytes/><d:quota-used-bytes/></d:prop></d:propfind>`
	e.do("PROPFIND", annaCal, map[string]string{"Depth": "0"}, quota).expect(t, http.StatusMultiStatus, "<d:quota-used-bytes>0</d:quota-used-bytes>")
	ev := ics(vevent("q", "Q", ":20250901T080000Z", ":20250901T090000Z")...)
	e.put(annaCal+"q.ics", icsType, ev, nil).expect(t, http.StatusCreated)
	e.do("PROPFIND", "/dav/calendars/anna@example.org/", map[string]string{"Depth": "0"}, quota).
		expect(t, http.StatusMultiStatus, "<d:quota-used-bytes>"+itoa(len(ev))+"</d:quota-used-bytes>")
	if err := e.dir.SetQuota(ctx, anna, int64(len(ev))+10); err != nil {
		t.Fatal(err)
	}
	e.put(annaCal+"q2.ics", icsType, ics(vevent("q2", "Q2", ":20250901T080000Z", ":20250901T090000Z")...), nil).
		expect(t, http.StatusInsufficientStorage, "quota-not-exceeded")
}
