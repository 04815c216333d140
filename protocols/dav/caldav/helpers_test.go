package caldav

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	webdav "github.com/emersion/go-webdav"
	wcaldav "github.com/emersion/go-webdav/caldav"
	wcarddav "github.com/emersion/go-webdav/carddav"

	"kreide/protocols/dav/davauth"
	"kreide/store"
	"kreide/store/storetest"
)

var ctx = context.Background()

// Test accounts.
const (
	anna, annaPass = "anna@example.org", "anna password"
	ben, benPass   = "ben@example.org", "ben password"
)

// env is a DAV server over a fresh store on loopback, with two users.
type env struct {
	t    testing.TB
	dir  *store.Directory
	srv  *httptest.Server
	anna *store.Account // for looking at the store directly
}

func newEnv(t testing.TB) *env {
	t.Helper()
	d := storetest.Open(t)
	a, _ := storetest.User(t, d, anna, annaPass)
	storetest.User(t, d, ben, benPass)
	mux := http.NewServeMux()
	mw := davauth.Middleware(davauth.Options{Dir: d, AllowPlaintext: davauth.IsLoopback})
	mux.Handle("/dav/", mw(NewHandler(Options{Prefix: "/dav/", MaxResourceSize: 256 << 10})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{t: t, dir: d, srv: srv, anna: a}
}

func (e *env) httpClient(user, pass string) webdav.HTTPClient {
	return webdav.HTTPClientWithBasicAuth(e.srv.Client(), user, pass)
}

func (e *env) caldav(user, pass string) *wcaldav.Client {
	e.t.Helper()
	c, err := wcaldav.NewClient(e.httpClient(user, pass), e.srv.URL+"/dav/")
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) carddav(user, pass string) *wcarddav.Client {
	e.t.Helper()
	c, err := wcarddav.NewClient(e.httpClient(user, pass), e.srv.URL+"/dav/")
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// reply is a raw response.
type reply struct {
	code int
	hdr  http.Header
	body string
}

// do sends a raw request as anna (or as the user in hdr "user"/"pass").
func (e *env) do(method, path string, hdr map[string]string, body string) reply {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	user, pass := anna, annaPass
	for k, v := range hdr {
		switch k {
		case "user":
			user = v
		case "pass":
			pass = v
		default:
			req.Header.Set(k, v)
		}
	}
	req.SetBasicAuth(user, pass)
	if body != "" && req.Header.Get("Content-Type") == "" && method != http.MethodPut {
		req.Header.Set("Content-Type", "application/xml; charset=utf-8")
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{code: resp.StatusCode, hdr: resp.Header, body: string(b)}
}

func (e *env) put(path, ctype, body string, hdr map[string]string) reply {
	e.t.Helper()
	h := map[string]string{"Content-Type": ctype}
	for k, v := range hdr {
		h[k] = v
	}
	return e.do(http.MethodPut, path, h, body)
}

func (r reply) expect(t testing.TB, code int, contains ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("status %d, want %d; body:\n%s", r.code, code, r.body)
	}
	for _, c := range contains {
		if !strings.Contains(r.body, c) {
			t.Fatalf("body lacks %q:\n%s", c, r.body)
		}
	}
}

const (
	annaCal   = "/dav/calendars/anna@example.org/calendar/"
	annaTasks = "/dav/calendars/anna@example.org/tasks/"
	annaBook  = "/dav/addressbooks/anna@example.org/contacts/"
	icsType   = "text/calendar; charset=utf-8"
	vcfType   = "text/vcard; charset=utf-8"
)

// ics wraps components in a VCALENDAR (lines joined with CRLF).
func ics(lines ...string) string {
	var b bytes.Buffer
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//kreide//test//EN\r\n")
	for _, l := range lines {
		b.WriteString(l + "\r\n")
	}
	b.WriteString("END:VCALENDAR\r\n")
	return b.String()
}

func vevent(uid, summary, start, end string, extra ...string) []string {
	l := []string{"BEGIN:VEVENT", "UID:" + uid, "DTSTAMP:20250801T000000Z", "SUMMARY:" + summary, "DTSTART" + start, "DTEND" + end}
	l = append(l, extra...)
	return append(l, "END:VEVENT")
}

func vcardText(uid, fn string, extra ...string) string {
	l := []string{"BEGIN:VCARD", "VERSION:3.0", "UID:" + uid, "FN:" + fn, "N:" + fn + ";;;;"}
	l = append(l, extra...)
	l = append(l, "END:VCARD")
	return strings.Join(l, "\r\n") + "\r\n"
}

// calQuery builds a calendar-query REPORT body.
func calQuery(prop, filter string) string {
	return `<?xml version="1.0" encoding="utf-8"?>
<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
<d:prop>` + prop + `</d:prop>
<c:filter>` + filter + `</c:filter>
</c:calendar-query>`
}

func timeRangeFilter(comp, start, end string) string {
	return `<c:comp-filter name="VCALENDAR"><c:comp-filter name="` + comp + `"><c:time-range start="` + start + `" end="` + end + `"/></c:comp-filter></c:comp-filter>`
}

// hrefs lists the d:href values of a multistatus that have a 200 propstat.
func hrefs(body string) []string {
	var out []string
	for _, part := range strings.Split(body, "<d:response>")[1:] {
		if !strings.Contains(part, "200 OK") {
			continue
		}
		h := part[strings.Index(part, "<d:href>")+len("<d:href>"):]
		out = append(out, h[:strings.Index(h, "</d:href>")])
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }
