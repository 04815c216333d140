package portability

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestMUTF7(t *testing.T) {
	for _, tc := range []struct{ plain, enc string }{
		{"INBOX", "INBOX"},
		{"Grüße", "Gr&APwA3w-e"},
		{"A&B", "A&-B"},
		{"日本語", "&ZeVnLIqe-"},
		{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
	} {
		if got := encodeMUTF7(tc.plain); got != tc.enc {
			t.Errorf("encode %q = %q, want %q", tc.plain, got, tc.enc)
		}
		if got := decodeMUTF7(tc.enc); got != tc.plain {
			t.Errorf("decode %q = %q, want %q", tc.enc, got, tc.plain)
		}
	}
	// Not modified UTF-7: left alone.
	for _, s := range []string{"Grüße &", "a&b", "&AGE"} {
		if got := decodeMUTF7(s); got != s {
			t.Errorf("decode %q = %q", s, got)
		}
	}
	for _, name := range []string{"a.b", `back\slash`, "Grüße", "~home"} {
		if got := decodeMaildirName(encodeMaildirName(name)); got != name || strings.Contains(encodeMaildirName(name), ".") {
			t.Errorf("Maildir name %q: %q back to %q", name, encodeMaildirName(name), got)
		}
	}
}

func TestFromLineDate(t *testing.T) {
	want := time.Date(2004, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, line := range []string{
		"From anna@example.org Thu Jan  1 00:00:00 2004",
		"From anna@example.org Thu Jan 1 00:00:00 2004",
		"From MAILER-DAEMON Thu Jan  1 00:00:00 +0000 2004",
		"From 1234@xxx Thu Jan 01 00:00:00 +0000 2004",
	} {
		if got, ok := fromLineDate([]byte(line)); !ok || !got.Equal(want) {
			t.Errorf("%q: %v %v", line, got, ok)
		}
	}
	for _, line := range []string{"From here on, we go", "From: anna@example.org", "From"} {
		if _, ok := fromLineDate([]byte(line)); ok {
			t.Errorf("%q taken for a From_ line", line)
		}
	}
}

func TestReaders(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a\nb\r\nc\n", "a\r\nb\r\nc\r\n"},
		{"\n\n", "\r\n\r\n"},
		{"no newline", "no newline"},
		{"cr\ronly\r", "cr\ronly\r"},
	} {
		got, err := io.ReadAll(newCRLFReader(iotest.OneByteReader(strings.NewReader(tc.in))))
		if err != nil || string(got) != tc.want {
			t.Errorf("crlf %q = %q, %v", tc.in, got, err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{">From a\n>>From b\n>>>From c\nx >From d\n>Fromage\n", "From a\n>From b\n>>From c\nx >From d\n>Fromage\n"},
		{">From", ">From"},
		{"", ""},
	} {
		got, err := io.ReadAll(newUnquoteReader(iotest.HalfReader(strings.NewReader(tc.in))))
		if err != nil || string(got) != tc.want {
			t.Errorf("unquote %q = %q, %v", tc.in, got, err)
		}
	}
	// A line far longer than any buffer passes through whole.
	long := ">From " + strings.Repeat("x", 200000) + "\n>From y\n"
	got, _ := io.ReadAll(newUnquoteReader(strings.NewReader(long)))
	if string(got) != long[1:len(long)-8]+"From y\n" {
		t.Errorf("unquote of a long line: %d bytes", len(got))
	}
}

func TestSummaries(t *testing.T) {
	cal := func(body string) []byte {
		return []byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n" + strings.ReplaceAll(body, "\n", "\r\n") + "END:VCALENDAR\r\n")
	}
	utc := func(d, h int) time.Time { return time.Date(2024, 3, d, h, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name       string
		body       string
		start, end time.Time
		exact      bool
	}{
		{"utc", "BEGIN:VEVENT\nUID:1\nDTSTART:20240301T100000Z\nDTEND:20240301T110000Z\nEND:VEVENT\n", utc(1, 10), utc(1, 11), true},
		{"zone", "BEGIN:VEVENT\nUID:1\nDTSTART;TZID=Europe/Berlin:20240301T100000\nDURATION:PT1H\nEND:VEVENT\n", utc(1, 9), utc(1, 10), true},
		{"floating", "BEGIN:VEVENT\nUID:1\nDTSTART:20240301T100000\nEND:VEVENT\n", utc(1, 10).Add(-floatSlack), utc(1, 10).Add(floatSlack), false},
		{"date", "BEGIN:VEVENT\nUID:1\nDTSTART;VALUE=DATE:20240301\nEND:VEVENT\n", utc(1, 0).Add(-floatSlack), utc(2, 0).Add(floatSlack), false},
		{"recurring", "BEGIN:VEVENT\nUID:1\nDTSTART:20240301T100000Z\nRRULE:FREQ=DAILY\nEND:VEVENT\n", utc(1, 10), time.Time{}, false},
		{"rdate", "BEGIN:VEVENT\nUID:1\nDTSTART:20240301T100000Z\nRDATE:20240201T100000Z\nEND:VEVENT\n", time.Time{}, time.Time{}, false},
		{"task without dates", "BEGIN:VTODO\nUID:1\nSUMMARY:x\nEND:VTODO\n", time.Time{}, time.Time{}, false},
		{"task due", "BEGIN:VTODO\nUID:1\nDUE:20240305T120000Z\nEND:VTODO\n", utc(5, 12), utc(5, 12), false},
		{"unknown zone", "BEGIN:VEVENT\nUID:1\nDTSTART;TZID=W. Europe Standard Time:20240301T100000\nDTEND;TZID=W. Europe Standard Time:20240301T110000\nEND:VEVENT\n", utc(1, 10).Add(-floatSlack), utc(1, 11).Add(floatSlack), false},
	} {
		sum, err := checkCalendar(cal(tc.body))
		if err != nil || !sum.Start.Equal(tc.start) || !sum.End.Equal(tc.end) || sum.Exact != tc.exact {
			t.Errorf("%s: %+v %v; want %v..%v exact %v", tc.name, sum, err, tc.start, tc.end, tc.exact)
		}
	}
	for _, body := range []string{
		"BEGIN:VEVENT\nDTSTART:20240301T100000Z\nEND:VEVENT\n",
		"BEGIN:VEVENT\nUID:1\nDTSTART:20240301T100000Z\nEND:VEVENT\nBEGIN:VEVENT\nUID:2\nDTSTART:20240301T100000Z\nEND:VEVENT\n",
		"BEGIN:VEVENT\nUID:1\nDTSTART:20240301T100000Z\nEND:VEVENT\nBEGIN:VTODO\nUID:1\nEND:VTODO\n",
		"BEGIN:VEVENT\nUID:1\nDTSTART:yesterday\nEND:VEVENT\n",
		"BEGIN:VEVENT\nUID:1\nDTSTART;TZID=\"unterminated:20240301T100000Z\nEND:VEVENT\n",
		"BEGIN:VFREEBUSY\nUID:1\nEND:VFREEBUSY\n",
		strings.Repeat("BEGIN:X\n", 30) + strings.Repeat("END:X\n", 30),
	} {
		if _, err := checkCalendar(cal(body)); err == nil {
			t.Errorf("accepted:\n%s", body)
		}
	}
}

// scanBytes scans data as a file of the given name.
func scanBytes(t testing.TB, name string, data []byte) *Plan {
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	p, _ := Scan(path, ScanOptions{})
	return p
}

// Reading every item of a plan gives back at most the file's bytes plus
// what the scan adds; no input makes the scanners panic.
func FuzzScan(f *testing.F) {
	f.Add("x.mbox", []byte("From a@b Thu Jan  1 00:00:00 2004\nFrom: a\n\n>From x\n\nFrom a@b Thu Jan  1 00:00:00 2004\n\n"))
	f.Add("x.ics", []byte("BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:1\n TZID=x\nDTSTART;TZID=\"a:b\":1\nEND:VEVENT\nBEGIN:VTIMEZONE\nTZID:a:b\nEND:VTIMEZONE\nEND:VCALENDAR\n"))
	f.Add("x.vcf", []byte("BEGIN:VCARD\nFN:x\nEND:VCARD\nBEGIN:VCARD\nUID:1\n"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		switch name {
		case "x.mbox", "x.ics", "x.vcf":
		default:
			return
		}
		p := scanBytes(t, name, data)
		if p == nil {
			return
		}
		defer p.Close()
		for _, e := range p.entries {
			if e.err != nil {
				continue
			}
			r, done, err := p.open(e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			done()
			if err != nil {
				t.Fatal(err)
			}
			if len(got) > len(data)+4096 {
				t.Fatalf("item of %d bytes from %d bytes", len(got), len(data))
			}
			if name == "x.ics" {
				checkCalendar(got)
			}
			if name == "x.vcf" {
				checkVCard(got)
			}
		}
	})
}

func TestCleanMailbox(t *testing.T) {
	for in, want := range map[string]string{
		"Inbox/Projekt": "INBOX/Projekt", "inbox": "INBOX", "/a//b/ ": "a/b", "": "", " Alte Post ": "Alte Post", "Inboxes": "Inboxes",
	} {
		if got := cleanMailbox(in); got != want {
			t.Errorf("cleanMailbox(%q) = %q, want %q", in, got, want)
		}
	}
}
