package protocols

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"kreide/store"
	"kreide/store/storetest"
)

// wholeServer starts every frontend of kreide serve on loopback over a fresh
// data dir with one account, t@example.org / "password1".
func wholeServer(t *testing.T) (*Server, *store.Directory) {
	t.Helper()
	d := storetest.Open(t)
	if _, err := d.CreateAccount(context.Background(), "t@example.org", "password1"); err != nil {
		t.Fatal(err)
	}
	cfg := serverTestConfig(d)
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := Start(ctx, cfg, d, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		srv.Close()
		srv.Wait()
	})
	return srv, d
}

var insecureTLS = &tls.Config{InsecureSkipVerify: true}

// TestMarkersThroughEveryProtocol writes marker strings through IMAP, SMTP,
// CalDAV, CardDAV and WebDAV, stops the server, and checks that no file under
// the data dir contains any of them (shared/DESIGN.md, invariant 1).
func TestMarkersThroughEveryProtocol(t *testing.T) {
	srv, d := wholeServer(t)
	markers := map[string]string{}
	mark := func(what string) string {
		m := fmt.Sprintf("Marker%sXq%d", what, time.Now().UnixNano()%100000)
		markers[what] = m
		return m
	}

	// IMAP: a mailbox name, a keyword and a message.
	c, err := imapclient.DialTLS(srv.Addr("listen.imaps").String(), &imapclient.Options{TLSConfig: insecureTLS})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("t@example.org", "password1").Wait(); err != nil {
		t.Fatal(err)
	}
	box := mark("ImapMailbox")
	if err := c.Create(box, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msg := "Subject: " + mark("ImapSubject") + "\r\n\r\n" + mark("ImapBody") + "\r\n"
	app := c.Append(box, int64(len(msg)), &imap.AppendOptions{Flags: []imap.Flag{imap.Flag(mark("ImapKeyword"))}})
	app.Write([]byte(msg))
	app.Close()
	if _, err := app.Wait(); err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()

	// SMTP submission over TLS, to the account itself (stored through the locked path).
	sc, err := smtp.DialTLS(srv.Addr("listen.submissions").String(), insecureTLS)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Auth(plainAuth("t@example.org", "password1")); err != nil {
		t.Fatal(err)
	}
	mail := "From: t@example.org\r\nTo: t@example.org\r\nSubject: " + mark("SmtpSubject") + "\r\n\r\n" + mark("SmtpBody") + "\r\n"
	if err := sc.SendMail("t@example.org", []string{"t@example.org"}, strings.NewReader(mail)); err != nil {
		t.Fatal(err)
	}
	sc.Quit()

	// WebDAV: a folder, a file name, its content and a dead property.
	base := "https://" + srv.Addr("listen.https").String()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: insecureTLS}}
	do := func(method, path, body string, hdr map[string]string, want ...int) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.SetBasicAuth("t@example.org", "password1")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, w := range want {
			if resp.StatusCode == w {
				return
			}
		}
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	folder := "/files/" + mark("DavFolder") + "/"
	do("MKCOL", folder, "", nil, 201)
	file := folder + mark("DavFileName") + ".txt"
	do("PUT", file, mark("DavContent"), nil, 201)
	do("PROPPATCH", file, `<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:x="urn:x"><d:set><d:prop><x:note>`+mark("DavProperty")+`</x:note></d:prop></d:set></d:propertyupdate>`, map[string]string{"Content-Type": "application/xml"}, 207)

	// CalDAV and CardDAV: an event and a contact in the default collections.
	putCalendarAndContact(t, hc, base, mark("EventSummary"), mark("ContactName"))

	srv.Close()
	srv.Wait()
	d.Close()
	filepath.WalkDir(d.Dir(), func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, _ := os.ReadFile(path)
		lower := bytes.ToLower(b)
		for what, m := range markers {
			if bytes.Contains(lower, bytes.ToLower([]byte(m))) {
				t.Errorf("%s (written through %s) found in clear in %s", m, what, path)
			}
		}
		return nil
	})
	if len(markers) < 12 {
		t.Fatalf("only %d markers written", len(markers))
	}
}

func plainAuth(user, pass string) sasl.Client { return sasl.NewPlainClient("", user, pass) }

// putCalendarAndContact stores an event and a contact in the account's
// default calendar and address book, as a phone would.
func putCalendarAndContact(t *testing.T, hc *http.Client, base, summary, name string) {
	t.Helper()
	ics := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//kreide test//EN\r\nBEGIN:VEVENT\r\nUID:e2e-event-1\r\nDTSTAMP:20260301T080000Z\r\nDTSTART:20260302T080000Z\r\nDTEND:20260302T090000Z\r\nSUMMARY:" + summary + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	vcf := "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:e2e-contact-1\r\nFN:" + name + "\r\nN:" + name + ";;;;\r\nTEL:+49 30 1234567\r\nEND:VCARD\r\n"
	for _, p := range []struct{ path, body, ctype string }{
		{"/dav/calendars/t@example.org/calendar/e2e.ics", ics, "text/calendar; charset=utf-8"},
		{"/dav/addressbooks/t@example.org/contacts/e2e.vcf", vcf, "text/vcard; charset=utf-8"},
	} {
		req, _ := http.NewRequest("PUT", base+p.path, strings.NewReader(p.body))
		req.SetBasicAuth("t@example.org", "password1")
		req.Header.Set("Content-Type", p.ctype)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("PUT %s: %d %s", p.path, resp.StatusCode, b)
		}
		req, _ = http.NewRequest("GET", base+p.path, nil)
		req.SetBasicAuth("t@example.org", "password1")
		resp, err = hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != p.body {
			t.Fatalf("GET %s returned other content: %q", p.path, b)
		}
	}
}

// TestWellKnownAndRoot: discovery a phone does with only a host name.
func TestWellKnownAndRoot(t *testing.T) {
	srv, _ := wholeServer(t)
	base := "https://" + srv.Addr("listen.https").String()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: insecureTLS},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{"/.well-known/caldav", "/.well-known/carddav"} {
		resp, err := hc.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 301 || resp.Header.Get("Location") != "/dav/" {
			t.Fatalf("%s: %d %s", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	req, _ := http.NewRequest("PROPFIND", base+"/", strings.NewReader(`<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:current-user-principal/></d:prop></d:propfind>`))
	req.SetBasicAuth("t@example.org", "password1")
	req.Header.Set("Depth", "0")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 207 || !strings.Contains(string(b), "/dav/principals/t@example.org/") {
		t.Fatalf("PROPFIND /: %d %s", resp.StatusCode, b)
	}
	req, _ = http.NewRequest("OPTIONS", base+"/", nil)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("MS-Author-Via") != "DAV" || !strings.Contains(resp.Header.Get("DAV"), "2") {
		t.Fatalf("OPTIONS /: %v", resp.Header)
	}
}
