package caldav

import (
	"bytes"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMarkersNeverInClear writes marker strings through CalDAV and CardDAV
// (event, task, contact, calendar name, collection URL, object name, dead
// property) and checks that no file under the data dir holds them
// (invariant 1).
func TestMarkersNeverInClear(t *testing.T) {
	e := newEnv(t)
	const (
		summary = "MarkerDavSummaryQuux"
		task    = "MarkerDavTaskFrob"
		contact = "MarkerDavContactZyzzy"
		calName = "MarkerDavCalNameWibble"
		slug    = "MarkerDavSlugBlarg"
		object  = "MarkerDavObjectPlugh"
		dead    = "MarkerDavDeadXyzzy"
		uid     = "MarkerDavUIDThud"
	)
	coll := "/dav/calendars/anna@example.org/" + slug + "/"
	e.do("MKCALENDAR", coll, nil, `<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop><d:displayname>`+
		calName+`</d:displayname></d:prop></d:set></c:mkcalendar>`).expect(t, http.StatusCreated)
	e.do("PROPPATCH", coll, nil, `<d:propertyupdate xmlns:d="DAV:" xmlns:x="urn:x"><d:set><d:prop><x:note>`+dead+
		`</x:note></d:prop></d:set></d:propertyupdate>`).expect(t, http.StatusMultiStatus, "200 OK")
	e.put(coll+object+".ics", icsType, ics(vevent(uid, summary, ":20250901T080000Z", ":20250901T090000Z", "RRULE:FREQ=WEEKLY")...), nil).
		expect(t, http.StatusCreated)
	e.put(annaTasks+object+".ics", icsType, ics("BEGIN:VTODO", "UID:"+uid, "DTSTAMP:20250801T000000Z", "SUMMARY:"+task, "END:VTODO"), nil).
		expect(t, http.StatusCreated)
	e.put(annaBook+object+".vcf", vcfType, vcardText(uid, contact, "NOTE:"+strings.Repeat(contact+" ", 8000)), nil).expect(t, http.StatusCreated)
	e.put(annaBook+"gone.vcf", vcfType, vcardText("gone", contact), nil).expect(t, http.StatusCreated)
	e.do(http.MethodDelete, annaBook+"gone.vcf", nil, "").expect(t, http.StatusNoContent)

	e.srv.Close()
	e.anna.Close()
	e.dir.Close()
	markers := []string{summary, task, contact, calName, slug, object, dead, uid}
	filepath.WalkDir(e.dir.Dir(), func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range markers {
			if bytes.Contains(bytes.ToLower(b), bytes.ToLower([]byte(m))) {
				t.Errorf("%s contains %q in clear", path, m)
			}
		}
		return nil
	})
}
