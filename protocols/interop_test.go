package protocols

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-msgauth/dkim"

	"kreide/internal/interop"
	"kreide/protocols/smtp"
)

// TestSwaksAgainstKreideServe: swaks submits over STARTTLS with AUTH to a
// local user of the whole server; the message is read back over IMAP and
// its DKIM signatures verify against the keys `kreide dns` publishes. A relay
// attempt without AUTH and sending as another user's address are refused.
func TestSwaksAgainstKreideServe(t *testing.T) {
	swaks := interop.Need(t, "swaks", "swaks")
	srv, d := wholeServer(t)
	ctx := context.Background()
	if _, err := d.CreateAccount(ctx, "ben@example.org", "password2"); err != nil {
		t.Fatal(err)
	}
	swak := func(addr string, args ...string) (string, error) {
		host, port, _ := net.SplitHostPort(addr)
		out, err := exec.Command(swaks, append([]string{"--server", host, "--port", port}, args...)...).CombinedOutput()
		return string(out), err
	}

	out, err := swak(srv.Addr("listen.submission").String(), "--tls", "--auth", "PLAIN",
		"--auth-user", "t@example.org", "--auth-password", "password1",
		"--from", "t@example.org", "--to", "ben@example.org",
		"--header", "Subject: Elternabend", "--body", "Liebe Eltern, am Dienstag ist Elternabend.")
	if err != nil {
		t.Fatalf("swaks submission: %v\n%s", err, out)
	}

	c, err := imapclient.DialTLS(srv.Addr("listen.imaps").String(), &imapclient.Options{TLSConfig: insecureTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("ben@example.org", "password2").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %v (%d messages)", err, len(msgs))
	}
	var raw []byte
	for _, b := range msgs[0].BodySection {
		raw = b.Bytes
	}
	if !strings.Contains(string(raw), "Elternabend") {
		t.Fatalf("message over IMAP:\n%s", raw)
	}
	recs, err := smtp.DNSRecords(ctx, d, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	txt := map[string]string{}
	for _, r := range recs {
		if r.Type == "TXT" {
			txt[r.Name] = r.Value
		}
	}
	verifs, err := dkim.VerifyWithOptions(strings.NewReader(string(raw)), &dkim.VerifyOptions{
		LookupTXT: func(domain string) ([]string, error) {
			if v, ok := txt[strings.TrimSuffix(domain, ".")]; ok {
				return []string{v}, nil
			}
			return nil, io.EOF
		},
	})
	if err != nil || len(verifs) != 2 {
		t.Fatalf("DKIM: %v, %d signatures", err, len(verifs))
	}
	for _, v := range verifs {
		if v.Err != nil || v.Domain != "example.org" {
			t.Fatalf("signature of %s: %v", v.Domain, v.Err)
		}
	}

	// No open relay: mail for a foreign domain without AUTH, on the MX port.
	out, err = swak(srv.Addr("listen.smtp").String(), "--from", "someone@elsewhere.test", "--to", "victim@other.test")
	if err == nil || !strings.Contains(out, "550") {
		t.Fatalf("relay attempt was not refused with 550: %v\n%s", err, out)
	}
	// Sending as another user's address, authenticated as t@.
	out, err = swak(srv.Addr("listen.submission").String(), "--tls", "--auth", "PLAIN",
		"--auth-user", "t@example.org", "--auth-password", "password1",
		"--from", "ben@example.org", "--to", "ben@example.org")
	if err == nil || !strings.Contains(out, "553") {
		t.Fatalf("sending as another user was not refused with 553: %v\n%s", err, out)
	}
}

// pythonCaldavFromRoot: given only the server root, python3-caldav finds the
// principal, creates a calendar, stores a recurring event and a task, finds
// them by time range and follows sync tokens.
const pythonCaldavFromRoot = `
import sys, json, datetime
import caldav

url, user, password = sys.argv[1:4]
client = caldav.DAVClient(url=url, username=user, password=password, ssl_verify_cert=False)
principal = client.principal()
cal = principal.make_calendar(name="Klassenfahrt 7b", cal_id="klassenfahrt")
cal.save_event("""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//python//kreide test//EN
BEGIN:VEVENT
UID:trip-daily
DTSTAMP:20260101T000000Z
DTSTART:20260511T070000Z
DTEND:20260511T080000Z
RRULE:FREQ=DAILY;COUNT=5
SUMMARY:Morgenappell
END:VEVENT
END:VCALENDAR
""")
cal.save_todo("""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//python//kreide test//EN
BEGIN:VTODO
UID:trip-todo
DTSTAMP:20260101T000000Z
DUE:20260508T120000Z
SUMMARY:Notfallliste drucken
END:VTODO
END:VCALENDAR
""")
found = cal.date_search(start=datetime.datetime(2026, 5, 13), end=datetime.datetime(2026, 5, 14), expand=True)
starts = sorted(c.decoded("DTSTART").isoformat() for ev in found for c in ev.icalendar_instance.walk("VEVENT"))
todos = [str(t.icalendar_instance.walk("VTODO")[0].get("SUMMARY")) for t in cal.todos()]
objs = cal.objects_by_sync_token(load_objects=False)
first = len(list(objs))
token = objs.sync_token
cal.save_event("""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//python//kreide test//EN
BEGIN:VEVENT
UID:trip-bus
DTSTAMP:20260101T000000Z
DTSTART:20260515T150000Z
DTEND:20260515T160000Z
SUMMARY:Rueckfahrt
END:VEVENT
END:VCALENDAR
""")
changed = cal.objects_by_sync_token(sync_token=token, load_objects=True)
later = [str(o.icalendar_instance.walk("VEVENT")[0].get("UID")) for o in changed]
print(json.dumps({"starts": starts, "todos": todos, "first": first, "changed": later,
                  "names": [c.name for c in principal.calendars()]}))
`

func TestPythonCaldavFromRoot(t *testing.T) {
	py := interop.NeedPython(t, "caldav", "python3-caldav")
	srv, _ := wholeServer(t)
	cmd := exec.Command(py, "-c", pythonCaldavFromRoot, "https://"+srv.Addr("listen.https").String()+"/", "t@example.org", "password1")
	cmd.Env = append(cmd.Environ(), "HOME="+t.TempDir(), "PYTHONWARNINGS=ignore")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("python3-caldav: %v\n%s\n%s", err, out, stderr)
	}
	var res struct {
		Starts  []string
		Todos   []string
		First   int
		Changed []string
		Names   []string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if len(res.Starts) != 1 || !strings.HasPrefix(res.Starts[0], "2026-05-13T07:00") {
		t.Errorf("time-range search with expansion: %v", res.Starts)
	}
	if len(res.Todos) != 1 || res.Todos[0] != "Notfallliste drucken" {
		t.Errorf("tasks: %v", res.Todos)
	}
	if res.First != 2 || len(res.Changed) != 1 || res.Changed[0] != "trip-bus" {
		t.Errorf("sync: first %d objects, then changes %v (want 2, then trip-bus)", res.First, res.Changed)
	}
	if !slices.Contains(res.Names, "Klassenfahrt 7b") {
		t.Errorf("calendars: %v", res.Names)
	}
}
