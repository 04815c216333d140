package caldav

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kreide/internal/interop"
	"kreide/store"
)

// TestVdirsyncer syncs the calendar and the address book both ways with
// vdirsyncer (Debian package vdirsyncer).
func TestVdirsyncer(t *testing.T) {
	bin := interop.Need(t, "vdirsyncer", "vdirsyncer")
	e := newEnv(t)
	e.put(annaCal+"server-event.ics", icsType, ics(vevent("server-event", "Vom Server", ":20250901T080000Z", ":20250901T090000Z")...), nil).
		expect(t, http.StatusCreated)
	e.put(annaBook+"server-contact.vcf", vcfType, vcardText("server-contact", "Server Kontakt"), nil).expect(t, http.StatusCreated)

	dir := t.TempDir()
	local := func(p ...string) string { return filepath.Join(append([]string{dir}, p...)...) }
	config := `[general]
status_path = "` + local("status") + `/"

[pair cal]
a = "cal_remote"
b = "cal_local"
collections = ["calendar"]

[storage cal_remote]
type = "caldav"
url = "` + e.srv.URL + `/dav/"
username = "` + anna + `"
password = "` + annaPass + `"

[storage cal_local]
type = "filesystem"
path = "` + local("cal") + `/"
fileext = ".ics"

[pair card]
a = "card_remote"
b = "card_local"
collections = ["contacts"]

[storage card_remote]
type = "carddav"
url = "` + e.srv.URL + `/dav/"
username = "` + anna + `"
password = "` + annaPass + `"

[storage card_local]
type = "filesystem"
path = "` + local("card") + `/"
fileext = ".vcf"
`
	cfg := local("config")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"-c", cfg}, args...)...)
		cmd.Stdin = strings.NewReader(strings.Repeat("y\n", 10))
		cmd.Env = append(os.Environ(), "HOME="+dir, "LC_ALL=C.UTF-8", "LANG=C.UTF-8")
		start := time.Now()
		out, err := cmd.CombinedOutput()
		t.Logf("took %v", time.Since(start))
		if err != nil || strings.Contains(string(out), "error:") {
			t.Fatalf("vdirsyncer %v: %v\n%s", args, err, out)
		}
		t.Logf("vdirsyncer %v:\n%s", args, out)
		return string(out)
	}
	run("discover")
	run("sync")

	// Server to local.
	calFiles := readDir(t, local("cal", "calendar"))
	if len(calFiles) != 1 || !strings.Contains(calFiles[0], "Vom Server") {
		t.Fatalf("local calendar: %q", calFiles)
	}
	cardFiles := readDir(t, local("card", "contacts"))
	if len(cardFiles) != 1 || !strings.Contains(cardFiles[0], "Server Kontakt") {
		t.Fatalf("local address book: %q", cardFiles)
	}

	// Local to server: a new event and contact, and a change.
	write := func(path, body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(local("cal", "calendar", "local-event.ics"), ics(vevent("local-event", "Vom Laptop", ":20250902T080000Z", ":20250902T090000Z")...))
	write(local("card", "contacts", "local-contact.vcf"), vcardText("local-contact", "Laptop Kontakt"))
	write(local("cal", "calendar", "server-event.ics"), ics(vevent("server-event", "Vom Server, geändert", ":20250901T080000Z", ":20250901T090000Z")...))
	run("sync")
	cal, _ := e.anna.CollectionBySlug(ctx, store.KindCalendar, "calendar")
	book, _ := e.anna.CollectionBySlug(ctx, store.KindAddressBook, "contacts")
	if got := objectTexts(t, e.anna, cal.ID); len(got) != 2 || !strings.Contains(strings.Join(got, ""), "Vom Laptop") ||
		!strings.Contains(strings.Join(got, ""), "Vom Server, geändert") {
		t.Fatalf("server calendar after upload: %q", got)
	}
	if got := objectTexts(t, e.anna, book.ID); len(got) != 2 || !strings.Contains(strings.Join(got, ""), "Laptop Kontakt") {
		t.Fatalf("server address book after upload: %q", got)
	}

	// Deleted on the server, deleted locally.
	e.do(http.MethodDelete, annaBook+"server-contact.vcf", nil, "").expect(t, http.StatusNoContent)
	run("sync")
	if cardFiles := readDir(t, local("card", "contacts")); len(cardFiles) != 1 || !strings.Contains(cardFiles[0], "Laptop Kontakt") {
		t.Fatalf("local address book after a server delete: %q", cardFiles)
	}
	// Deleted locally, deleted on the server.
	for _, f := range mustGlob(t, local("cal", "calendar", "*.ics")) {
		if b, _ := os.ReadFile(f); strings.Contains(string(b), "Vom Laptop") {
			os.Remove(f)
		}
	}
	run("sync")
	if got := objectTexts(t, e.anna, cal.ID); len(got) != 1 || strings.Contains(got[0], "Vom Laptop") {
		t.Fatalf("server calendar after a local delete: %q", got)
	}
	// Changed on the server, changed locally.
	e.put(annaCal+"server-event.ics", icsType, ics(vevent("server-event", "Vom Server, dritte Fassung", ":20250901T080000Z", ":20250901T093000Z")...), nil).
		expect(t, http.StatusNoContent)
	run("sync")
	if calFiles := readDir(t, local("cal", "calendar")); len(calFiles) != 1 || !strings.Contains(calFiles[0], "dritte Fassung") {
		t.Fatalf("local calendar after a server change: %q", calFiles)
	}
	// In step: a second sync transfers nothing.
	if out := run("sync"); strings.Contains(out, "Copying") || strings.Contains(out, "Deleting") {
		t.Fatalf("second sync transferred items:\n%s", out)
	}
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readDir(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, f := range mustGlob(t, filepath.Join(dir, "*")) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

func objectTexts(t *testing.T, a *store.Account, coll uint32) []string {
	t.Helper()
	var out []string
	err := a.ListObjects(ctx, coll, store.ObjectOptions{Data: true}, func(o *store.Object) error {
		out = append(out, string(o.Data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pythonCaldav is run by /usr/bin/python3 with Debian's python3-caldav:
// it creates a weekly event (with an exception) and a task, searches a
// date range with server-side expansion and reads everything back.
const pythonCaldav = `
import sys, json, datetime
import caldav

url, user, password = sys.argv[1:4]
client = caldav.DAVClient(url=url, username=user, password=password)
principal = client.principal()
cals = {c.url.path.rstrip("/").split("/")[-1]: c for c in principal.calendars()}
cal, tasks = cals["calendar"], cals["tasks"]

cal.save_event("""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//python//caldav test//EN
BEGIN:VEVENT
UID:py-weekly
DTSTAMP:20250801T000000Z
DTSTART:20250901T060000Z
DTEND:20250901T064500Z
RRULE:FREQ=WEEKLY;COUNT=10
EXDATE:20250915T060000Z
SUMMARY:Deutsch 5a
END:VEVENT
END:VCALENDAR
""")
tasks.save_todo("""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//python//caldav test//EN
BEGIN:VTODO
UID:py-todo
DTSTAMP:20250801T000000Z
DUE:20250910T120000Z
SUMMARY:Zeugnisse schreiben
END:VTODO
END:VCALENDAR
""")

found = cal.date_search(start=datetime.datetime(2025, 9, 8), end=datetime.datetime(2025, 9, 23), expand=True)
instances = []
for ev in found:
    for comp in ev.icalendar_instance.walk("VEVENT"):
        instances.append({"summary": str(comp.get("SUMMARY")), "start": comp.decoded("DTSTART").isoformat(),
                          "rrule": comp.get("RRULE") is not None})
todos = [str(t.icalendar_instance.walk("VTODO")[0].get("SUMMARY")) for t in tasks.todos()]
back = cal.event_by_uid("py-weekly")
print(json.dumps({"instances": instances, "todos": todos, "event": back.data}))
`

// TestPythonCaldav drives the server with Debian's python3-caldav.
func TestPythonCaldav(t *testing.T) {
	py := interop.NeedPython(t, "caldav", "python3-caldav")
	e := newEnv(t)
	cmd := exec.Command(py, "-c", pythonCaldav, e.srv.URL+"/dav/", anna, annaPass)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("python3-caldav: %v\n%s\n%s", err, out, stderr)
	}
	var res struct {
		Instances []struct {
			Summary, Start string
			RRule          bool
		}
		Todos []string
		Event string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	// 8 Sept and 22 Sept; 15 Sept is excluded.
	var starts []string
	for _, in := range res.Instances {
		if in.RRule || in.Summary != "Deutsch 5a" {
			t.Errorf("instance not expanded: %+v", in)
		}
		ts, _ := time.Parse(time.RFC3339, in.Start)
		starts = append(starts, ts.UTC().Format("2006-01-02T15:04"))
	}
	if strings.Join(starts, " ") != "2025-09-08T06:00 2025-09-22T06:00" {
		t.Errorf("expanded instances: %v", starts)
	}
	if len(res.Todos) != 1 || res.Todos[0] != "Zeugnisse schreiben" {
		t.Errorf("todos: %v", res.Todos)
	}
	if !strings.Contains(res.Event, "RRULE:FREQ=WEEKLY;COUNT=10") {
		t.Errorf("event read back: %s", res.Event)
	}
}
