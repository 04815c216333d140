package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"kreide/internal/portability/portabilitytest"
	"kreide/protocols"
)

const rtUser, rtPassword = "anna@school.test", "password one"

// writeConfigHTTPS is writeConfig with the HTTPS (DAV) listener on too.
func writeConfigHTTPS(t *testing.T) (path, dataDir string) {
	t.Helper()
	path, dataDir = writeConfig(t, "")
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	on := strings.Replace(string(cfg), `https = ""`, `https = "127.0.0.1:0"`, 1)
	if on == string(cfg) {
		t.Fatal(`testdata/serve.toml has no line https = ""`)
	}
	if err := os.WriteFile(path, []byte(on), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, dataDir
}

// requireServed skips (or, with KREIDE_INTEROP=1, fails) when this build
// does not serve one of the listen keys.
func requireServed(t *testing.T, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if !protocols.Served(k) {
			if os.Getenv("KREIDE_INTEROP") == "1" {
				t.Fatalf("this build does not serve %s", k)
			}
			t.Skipf("this build does not serve %s", k)
		}
	}
}

// imapsLogin connects to the IMAPS listener (self-signed certificate) and
// logs in as anna.
func imapsLogin(t *testing.T, addr string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialTLS(addr, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(rtUser, rtPassword).Wait(); err != nil {
		t.Fatalf("IMAP LOGIN: %v", err)
	}
	return c
}

// rtMessage is the numbered message the backup test appends.
func rtMessage(n int) []byte {
	return fmt.Appendf(nil, "From: anna@school.test\r\nTo: anna@school.test\r\nSubject: appended %d\r\nMessage-ID: <a%d@school.test>\r\n"+
		"Date: Mon, 02 Jan 2006 15:04:05 +0100\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBody of appended message %d, with Umlaute: äöü.\r\n", n, n, n)
}

func appendMsg(c *imapclient.Client, box string, msg []byte) error {
	cmd := c.Append(box, int64(len(msg)), nil)
	if _, err := cmd.Write(msg); err != nil {
		cmd.Close()
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	_, err := cmd.Wait()
	return err
}

// fetchAll returns every message of box (flags and BODY.PEEK[]) in
// sequence order.
func fetchAll(t *testing.T, c *imapclient.Client, box string) []*imapclient.FetchMessageBuffer {
	t.Helper()
	sel, err := c.Select(box, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("SELECT %s: %v", box, err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{
		Flags:       true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		t.Fatalf("FETCH in %s: %v", box, err)
	}
	if len(msgs) != int(sel.NumMessages) {
		t.Fatalf("FETCH 1:* in %s: %d messages, SELECT said %d", box, len(msgs), sel.NumMessages)
	}
	return msgs
}

func body(m *imapclient.FetchMessageBuffer) []byte {
	return m.FindBodySection(&imap.FetchItemBodySection{Peek: true})
}

// davClient does HTTP requests with Basic auth to the HTTPS listener.
type davClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newDAVClient(t *testing.T, addr string) *davClient {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	t.Cleanup(tr.CloseIdleConnections)
	return &davClient{t: t, base: "https://" + addr, c: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// do sends the request and fails the test unless the status is one of want.
func (d *davClient) do(method, path, ctype string, reqBody []byte, want ...int) []byte {
	d.t.Helper()
	var r io.Reader
	if reqBody != nil {
		r = bytes.NewReader(reqBody)
	}
	req, err := http.NewRequest(method, d.base+path, r)
	if err != nil {
		d.t.Fatal(err)
	}
	req.SetBasicAuth(rtUser, rtPassword)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := d.c.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatalf("%s %s: reading the response: %v", method, path, err)
	}
	if !slices.Contains(want, resp.StatusCode) {
		d.t.Fatalf("%s %s: %s, want %v\n%s", method, path, resp.Status, want, got)
	}
	return got
}

const (
	rtEventPath   = "/dav/calendars/anna@school.test/calendar/x.ics"
	rtContactPath = "/dav/addressbooks/anna@school.test/contacts/y.vcf"
	rtFilePath    = "/files/dir/f.bin"
	rtEvent       = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//kreide test//EN\r\nBEGIN:VEVENT\r\nUID:x@school.test\r\n" +
		"DTSTAMP:20240101T090000Z\r\nDTSTART:20240315T100000Z\r\nDTEND:20240315T110000Z\r\nSUMMARY:Konferenz\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	rtContact = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:y@school.test\r\nFN:Bernd Beispiel\r\nN:Beispiel;Bernd;;;\r\n" +
		"EMAIL:bernd@school.test\r\nEND:VCARD\r\n"
)

// Write through IMAP and DAV; back up while IMAP APPENDs go on; restore
// into a new data dir; serve it: everything written before the backup
// reads back identical through the same protocols.
func TestBackupRestoreThroughProtocols(t *testing.T) {
	requireServed(t, "listen.imaps", "listen.https")
	start := time.Now()
	cfg, dataDir := writeConfigHTTPS(t)
	s := startServe(t, cfg)
	ok(t, rtPassword+"\n", "user", "add", rtUser, "-config", cfg)

	// Mail.
	c := imapsLogin(t, serveAddr(t, s, "listen.imaps"))
	var appended atomic.Int32
	for range 5 {
		n := int(appended.Load()) + 1
		if err := appendMsg(c, "INBOX", rtMessage(n)); err != nil {
			t.Fatalf("APPEND %d: %v", n, err)
		}
		appended.Store(int32(n))
	}

	// Calendar, contacts, files.
	dav := newDAVClient(t, serveAddr(t, s, "listen.https"))
	dav.do("PUT", rtEventPath, "text/calendar; charset=utf-8", []byte(rtEvent), http.StatusCreated, http.StatusNoContent)
	dav.do("PUT", rtContactPath, "text/vcard; charset=utf-8", []byte(rtContact), http.StatusCreated, http.StatusNoContent)
	dav.do("MKCOL", "/files/dir/", "", nil, http.StatusCreated)
	file := make([]byte, 1<<20)
	rand.Read(file)
	fileSum := sha256.Sum256(file)
	dav.do("PUT", rtFilePath, "application/octet-stream", file, http.StatusCreated, http.StatusNoContent)
	// The live server gives them back as written (else the comparison
	// after the restore would mean nothing).
	if got := dav.do("GET", rtEventPath, "", nil, http.StatusOK); string(got) != rtEvent {
		t.Errorf("GET event before the backup:\n%q\nwant\n%q", got, rtEvent)
	}
	if got := dav.do("GET", rtContactPath, "", nil, http.StatusOK); string(got) != rtContact {
		t.Errorf("GET contact before the backup:\n%q\nwant\n%q", got, rtContact)
	}
	if got := dav.do("GET", rtFilePath, "", nil, http.StatusOK); sha256.Sum256(got) != fileSum {
		t.Errorf("GET file before the backup: %d bytes, SHA-256 differs", len(got))
	}

	// Keep appending (on a second connection) during the backup.
	c2 := imapsLogin(t, serveAddr(t, s, "listen.imaps"))
	before := int(appended.Load())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var appendErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			n := int(appended.Load()) + 1
			if err := appendMsg(c2, "INBOX", rtMessage(n)); err != nil {
				appendErr = fmt.Errorf("APPEND %d: %v", n, err)
				return
			}
			appended.Store(int32(n))
		}
	}()
	backupDir := filepath.Join(t.TempDir(), "backup")
	out := ok(t, "", "backup", backupDir, "-config", cfg).stdout
	if !strings.Contains(out, "taken by kreide serve while serving") {
		t.Errorf("backup did not go through serve:\n%s", out)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if appendErr != nil {
		t.Fatalf("APPEND during the backup: %v", appendErr)
	}
	total := int(appended.Load())
	t.Logf("%d messages appended before the backup, %d in all", before, total)
	c.Logout().Wait()
	c2.Logout().Wait()
	s.stop(t, dataDir)

	// Restore into a new data dir and serve that.
	cfg2, dataDir2 := writeConfigHTTPS(t)
	if out := ok(t, "", "restore", backupDir, "-config", cfg2).stdout; !strings.Contains(out, "Restored") {
		t.Errorf("restore output:\n%s", out)
	}
	s2 := startServe(t, cfg2)
	c = imapsLogin(t, serveAddr(t, s2, "listen.imaps"))
	msgs := fetchAll(t, c, "INBOX")
	t.Logf("%d messages in the restored INBOX", len(msgs))
	if len(msgs) < before || len(msgs) > total {
		t.Errorf("restored INBOX has %d messages; %d were appended before the backup, %d in all", len(msgs), before, total)
	}
	subjRE := regexp.MustCompile(`\r\nSubject: appended (\d+)\r\n`)
	found := map[int]bool{}
	for _, m := range msgs {
		b := body(m)
		sm := subjRE.FindSubmatch(b)
		if sm == nil {
			t.Errorf("restored message %d is not one that was appended:\n%q", m.SeqNum, b)
			continue
		}
		var n int
		fmt.Sscan(string(sm[1]), &n)
		if found[n] {
			t.Errorf("message %d is there twice", n)
		}
		found[n] = true
		if want := rtMessage(n); !bytes.Equal(b, want) {
			t.Errorf("restored message %d differs:\n%q\nwant\n%q", n, b, want)
		}
	}
	for n := 1; n <= before; n++ {
		if !found[n] {
			t.Errorf("message %d (appended before the backup) is missing after the restore", n)
		}
	}
	c.Logout().Wait()

	dav = newDAVClient(t, serveAddr(t, s2, "listen.https"))
	if got := dav.do("GET", rtEventPath, "", nil, http.StatusOK); string(got) != rtEvent {
		t.Errorf("GET event after the restore:\n%q\nwant\n%q", got, rtEvent)
	}
	if got := dav.do("GET", rtContactPath, "", nil, http.StatusOK); string(got) != rtContact {
		t.Errorf("GET contact after the restore:\n%q\nwant\n%q", got, rtContact)
	}
	if got := dav.do("GET", rtFilePath, "", nil, http.StatusOK); sha256.Sum256(got) != fileSum {
		t.Errorf("GET file after the restore: %d bytes (want %d), SHA-256 differs", len(got), len(file))
	}
	s2.stop(t, dataDir2)
	t.Logf("took %v", time.Since(start).Round(time.Millisecond))
}

// mdMessage is message n of folder box in the generated Maildir.
func mdMessage(box string, n int) []byte {
	return fmt.Appendf(nil, "From: bernd@school.test\r\nTo: anna@school.test\r\nSubject: %s %d\r\nMessage-ID: <%s-%d@school.test>\r\n"+
		"Date: Tue, 05 Mar 2024 08:00:00 +0100\r\n\r\nMessage %d in %s.\r\n", box, n, strings.ToLower(box), n, n, box)
}

// mdFlags are the Maildir flag letters of INBOX message n.
func mdFlags(n int) string {
	var f string
	if n%5 == 0 {
		f += "F"
	}
	if n%3 == 0 {
		f += "S"
	}
	return f
}

// writeMaildir writes a Maildir with 1,000 messages in INBOX (cur/, some
// \Seen and \Flagged) and 10 in .Projekte, and returns its root.
func writeMaildir(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "Maildir")
	for _, d := range []string{"cur", "new", "tmp", ".Projekte/cur", ".Projekte/new", ".Projekte/tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	base := time.Date(2024, 3, 5, 8, 0, 0, 0, time.UTC)
	write := func(dir string, n int, name string, data []byte) {
		p := filepath.Join(root, dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		mt := base.Add(time.Duration(n) * time.Minute)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	for n := 1; n <= 1000; n++ {
		write("cur", n, fmt.Sprintf("%d.M%dP1.host,S=%d:2,%s", base.Unix()+int64(n), n, len(mdMessage("INBOX", n)), mdFlags(n)), mdMessage("INBOX", n))
	}
	for n := 1; n <= 10; n++ {
		write(".Projekte/cur", n, fmt.Sprintf("%d.M%dP2.host:2,", base.Unix()+int64(n), n), mdMessage("Projekte", n))
	}
	return root
}

// Import a 1,010-message Maildir through serve, check it over IMAP, export
// it encrypted with a passphrase and count the messages in the archive.
func TestImportMaildir1000OverIMAP(t *testing.T) {
	requireServed(t, "listen.imaps")
	start := time.Now()
	cfg, dataDir := writeConfig(t, "")
	s := startServe(t, cfg)
	ok(t, rtPassword+"\n", "user", "add", rtUser, "-config", cfg)
	root := writeMaildir(t)

	r := ok(t, rtPassword+"\n", "import", rtUser, root, "-config", cfg)
	for _, want := range []string{"is a Maildir with 2 folders: 1010 messages", "imported 1010/1010 items"} {
		if !strings.Contains(r.stdout+r.stderr, want) {
			t.Errorf("import output lacks %q:\nstdout: %s\nstderr: %s", want, r.stdout, r.stderr)
		}
	}
	if _, log := s.output(); !strings.Contains(log, `msg="admin command done" op=import address=anna@school.test`) {
		t.Errorf("the import did not go through serve:\n%s", log)
	}
	t.Logf("import took %v", time.Since(start).Round(time.Millisecond))

	c := imapsLogin(t, serveAddr(t, s, "listen.imaps"))
	subjRE := regexp.MustCompile(`\r\nSubject: (INBOX|Projekte) (\d+)\r\n`)
	check := func(box string, want int) {
		msgs := fetchAll(t, c, box)
		if len(msgs) != want {
			t.Errorf("%s has %d messages, want %d", box, len(msgs), want)
		}
		var seen, flagged, wantSeen, wantFlagged int
		found := map[int]bool{}
		for _, m := range msgs {
			b := body(m)
			sm := subjRE.FindSubmatch(b)
			if sm == nil || string(sm[1]) != box {
				t.Errorf("%s message %d is not one of %s:\n%q", box, m.SeqNum, box, b)
				continue
			}
			var n int
			fmt.Sscan(string(sm[2]), &n)
			if found[n] {
				t.Errorf("%s message %d is there twice", box, n)
			}
			found[n] = true
			if !bytes.Equal(b, mdMessage(box, n)) {
				t.Errorf("%s message %d differs:\n%q\nwant\n%q", box, n, b, mdMessage(box, n))
			}
			hasSeen, hasFlagged := slices.Contains(m.Flags, imap.FlagSeen), slices.Contains(m.Flags, imap.FlagFlagged)
			var letters string
			if box == "INBOX" {
				letters = mdFlags(n)
			}
			wSeen, wFlagged := strings.Contains(letters, "S"), strings.Contains(letters, "F")
			if hasSeen != wSeen || hasFlagged != wFlagged {
				t.Errorf("%s message %d (:2,%s) has flags %v", box, n, letters, m.Flags)
			}
			if hasSeen {
				seen++
			}
			if hasFlagged {
				flagged++
			}
			if wSeen {
				wantSeen++
			}
			if wFlagged {
				wantFlagged++
			}
		}
		if seen != wantSeen || flagged != wantFlagged {
			t.Errorf(`%s: %d \Seen and %d \Flagged, want %d and %d`, box, seen, flagged, wantSeen, wantFlagged)
		}
		t.Logf(`%s: %d messages, %d \Seen, %d \Flagged`, box, len(msgs), seen, flagged)
	}
	check("INBOX", 1000)
	check("Projekte", 10)
	c.Logout().Wait()

	// Export, encrypted with a passphrase (from standard input).
	dir := t.TempDir()
	out := filepath.Join(dir, "anna.tar.gpg")
	ok(t, rtPassword+"\na long passphrase\n", "export", rtUser, "-passphrase", "-o", out, "-config", cfg)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("Message 1 in INBOX")) {
		t.Error("the export is not encrypted")
	}
	prompted := false
	md, err := openpgp.ReadMessage(bytes.NewReader(data), nil, func([]openpgp.Key, bool) ([]byte, error) {
		if prompted {
			t.Fatal("wrong passphrase")
		}
		prompted = true
		return []byte("a long passphrase"), nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	unpacked := filepath.Join(dir, "unpacked")
	portabilitytest.Untar(t, md.UnverifiedBody, unpacked)
	perBox := map[string]int{}
	mails := 0
	err = filepath.WalkDir(filepath.Join(unpacked, "Maildir"), func(p string, de fs.DirEntry, err error) error {
		if err != nil || !de.Type().IsRegular() {
			return err
		}
		if sub := filepath.Base(filepath.Dir(p)); sub == "cur" || sub == "new" {
			rel, _ := filepath.Rel(filepath.Join(unpacked, "Maildir"), filepath.Dir(filepath.Dir(p)))
			perBox[rel]++
			mails++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if mails != 1010 || perBox["."] != 1000 || perBox[".Projekte"] != 10 {
		t.Errorf("the export has %d mail files (%v), want 1010 (1000 in INBOX, 10 in .Projekte)", mails, perBox)
	}
	s.stop(t, dataDir)
	t.Logf("took %v", time.Since(start).Round(time.Millisecond))
}
