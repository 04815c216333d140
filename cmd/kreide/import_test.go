package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"kreide/internal/portability/portabilitytest"
	"kreide/protocols"
	"kreide/store"
	"kreide/store/storetest"
)

func TestImportExportWithoutServe(t *testing.T) { transferScenario(t, false) }

func TestImportExportThroughServe(t *testing.T) { transferScenario(t, true) }

// transferScenario imports every kind of sample data with kreide import,
// checks it arrived (by IMAP while serve runs, and through the store),
// exports it with each kind of encryption and compares the decrypted
// archive with what was imported.
func transferScenario(t *testing.T, withServe bool) {
	cfg, dataDir := writeConfig(t, "")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	var s *server
	if withServe {
		s = startServe(t, cfg)
	}
	c := func(a ...string) []string { return append(a, "-config", cfg) }
	const pw = "password one\n"
	ok(t, pw, c("user", "add", "anna@school.test")...)
	f := portabilitytest.Write(t, t.TempDir())

	for _, tc := range []struct {
		path   string
		code   int
		stderr []string
	}{
		{f.Maildir, 0, []string{"is a Maildir with 4 folders: 5 messages", "imported 5/5 items"}},
		{f.Mbox, 0, []string{"is an mbox file: 2 messages", "imported 2/2 items"}},
		{f.Calendars, 0, []string{"5 calendar objects", "imported 5/5 items"}},
		{f.VCF, 1, []string{"skipped kontakte.vcf: contact c-nameless: not a valid vCard: no FN or N", "1 of 4 items could not be imported"}},
		{f.Files, 0, []string{"is a folder of files: 5 files, 5 folders, 5.1 MiB", "imported 10/10 items"}},
	} {
		r := kreide(t, pw, c("import", "anna@school.test", tc.path)...)
		if r.code != tc.code {
			t.Errorf("import %s: exit %d, want %d\nstdout: %s\nstderr: %s", tc.path, r.code, tc.code, r.stdout, r.stderr)
		}
		for _, want := range tc.stderr {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("import %s: stderr lacks %q:\n%s", tc.path, want, r.stderr)
			}
		}
		if !strings.Contains(r.stdout, "Imported into anna@school.test: ") {
			t.Errorf("import %s: stdout %q", tc.path, r.stdout)
		}
	}
	// Damaged files: the bad items are named, the good ones imported.
	r := fails(t, 1, "skipped damaged.mbox: message 2 (line 7): not a mail message", pw, c("import", "anna@school.test", f.BrokenMbox, "-mailbox", "Kaputt")...)
	if !strings.Contains(r.stdout, "2 messages") || !strings.Contains(r.stderr, "1 of 3 items could not be imported") {
		t.Errorf("damaged mbox:\n%s\n%s", r.stdout, r.stderr)
	}
	r = fails(t, 1, "2 of 3 items could not be imported", pw, c("import", "anna@school.test", f.BrokenICS, "-collection", "Kaputt")...)
	for _, want := range []string{"skipped damaged.ics: event bad-date@school.test: not a valid calendar object: DTSTART", "skipped damaged.ics: line 16: VEVENT is cut off"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("damaged ics: stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	fails(t, 1, "wrong password for anna@school.test", "not the password\n", c("import", "anna@school.test", f.Mbox)...)
	fails(t, 1, "there is no account bob@school.test", pw, c("import", "bob@school.test", f.Mbox)...)
	fails(t, 1, "cannot read", pw, c("import", "anna@school.test", filepath.Join(t.TempDir(), "missing"))...)
	fails(t, 2, `-kind: unknown kind "pst"`, pw, c("import", "anna@school.test", f.Mbox, "-kind", "pst")...)
	fails(t, 1, "is not a Maildir", pw, c("import", "anna@school.test", f.Files, "-kind", "maildir")...)

	if withServe {
		port := regexp.MustCompile(`msg=listening key=listen.imap addr=127\.0\.0\.1:(\d+)`).FindStringSubmatch(func() string { _, e := s.output(); return e }())
		switch {
		case !protocols.Served("listen.imap"):
			t.Log("IMAP not served: checked through the store only")
		case port == nil:
			t.Error("no IMAP port in serve's log")
		default:
			checkIMAP(t, "127.0.0.1:"+port[1], f)
		}
		_, log := s.output()
		if !strings.Contains(log, `msg="admin command done" op=import address=anna@school.test`) {
			t.Errorf("serve did not do the imports:\n%s", log)
		}
		if strings.Contains(log, "password one") {
			t.Errorf("serve logged the password")
		}
	}

	// Export encrypted to a public key; decrypt with the private key.
	dir := t.TempDir()
	key, err := openpgp.NewEntity("Anna", "", "anna@school.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	var pub bytes.Buffer
	aw, _ := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	key.Serialize(aw)
	aw.Close()
	keyFile := filepath.Join(dir, "anna.asc")
	os.WriteFile(keyFile, pub.Bytes(), 0o600)
	out := filepath.Join(dir, "anna.tar.gpg")
	r = ok(t, pw, c("export", "anna@school.test", "-pgp-key", keyFile, "-o", out)...)
	if !strings.Contains(r.stdout, "encrypted to Anna <anna@school.test>") || !strings.Contains(r.stderr, "exported ") {
		t.Errorf("export: %s\n%s", r.stdout, r.stderr)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("export file: %v %v", fi, err)
	}
	data, _ := os.ReadFile(out)
	if bytes.Contains(data, []byte("Konferenz")) || bytes.Contains(data, []byte("Maildir/")) {
		t.Errorf("the export is not encrypted")
	}
	md, err := openpgp.ReadMessage(bytes.NewReader(data), openpgp.EntityList{key}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	unpacked := filepath.Join(dir, "pubkey")
	portabilitytest.Untar(t, md.UnverifiedBody, unpacked)
	portabilitytest.CheckExport(t, unpacked, f)

	// Export with a passphrase (from standard input), to standard output.
	cmd := exec.CommandContext(context.Background(), kreideBin, c("export", "anna@school.test", "-passphrase")...)
	cmd.Stdin = strings.NewReader(pw + "a long passphrase\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("export -passphrase: %v\n%s", err, stderr.String())
	}
	prompted := false
	md, err = openpgp.ReadMessage(bytes.NewReader(stdout.Bytes()), nil, func([]openpgp.Key, bool) ([]byte, error) {
		if prompted {
			t.Fatal("wrong passphrase")
		}
		prompted = true
		return []byte("a long passphrase"), nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tarData, err := io.ReadAll(md.UnverifiedBody)
	if err != nil {
		t.Fatal(err)
	}
	unpacked = filepath.Join(dir, "passphrase")
	portabilitytest.Untar(t, bytes.NewReader(tarData), unpacked)
	portabilitytest.CheckExport(t, unpacked, f)
	if gpg, err := exec.LookPath("gpg"); err == nil {
		// GnuPG reads it too.
		cmd := exec.Command(gpg, "--batch", "--quiet", "--homedir", t.TempDir(), "--pinentry-mode", "loopback", "--passphrase", "a long passphrase", "--decrypt")
		cmd.Stdin = bytes.NewReader(stdout.Bytes())
		got, err := cmd.Output()
		if err != nil || !bytes.Equal(got, tarData) {
			t.Errorf("gpg --decrypt: %v (%d bytes, want %d)", err, len(got), len(tarData))
		}
	}

	// Never plaintext, never over a file.
	fails(t, 2, "always encrypted: give -pgp-key KEYFILE or -passphrase", pw, c("export", "anna@school.test", "-o", filepath.Join(dir, "x"))...)
	fails(t, 2, "either -pgp-key or -passphrase", pw, c("export", "anna@school.test", "-passphrase", "-pgp-key", keyFile)...)
	fails(t, 1, "already exists", pw+"a long passphrase\n", c("export", "anna@school.test", "-passphrase", "-o", out)...)
	fails(t, 1, "is not an OpenPGP key file", pw, c("export", "anna@school.test", "-pgp-key", f.VCF, "-o", filepath.Join(dir, "y"))...)
	fails(t, 1, "passphrase is too short", pw+"short\n", c("export", "anna@school.test", "-passphrase", "-o", filepath.Join(dir, "z"))...)
	fails(t, 1, "wrong password", "wrong password\n", c("export", "anna@school.test", "-pgp-key", keyFile, "-o", filepath.Join(dir, "w"))...)
	for _, name := range []string{"x", "y", "z", "w"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("a failed export left %s", name)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 4 { // anna.asc, anna.tar.gpg, pubkey, passphrase
		t.Errorf("files left in the output folder: %v", ents)
	}

	if withServe {
		s.stop(t, dataDir)
	}
	// Whatever path the import took, the account has it all.
	d, err := store.Open(dataDir, storetest.Options())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	a, err := d.Login(context.Background(), "anna@school.test", "password one", store.ScopeIMAP)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	portabilitytest.CheckAccount(t, a, f)
}

// checkIMAP checks the imported mail through kreide's IMAP server.
func checkIMAP(t *testing.T, addr string, f *portabilitytest.Fixtures) {
	t.Helper()
	cl, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Login("anna@school.test", "password one").Wait(); err != nil {
		t.Fatal(err)
	}
	list, err := cl.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.Mailbox)
	}
	byBox := make(map[string][]portabilitytest.Message)
	for _, m := range f.Messages {
		byBox[m.Mailbox] = append(byBox[m.Mailbox], m)
	}
	for box, want := range byBox {
		if !slices.Contains(names, box) {
			t.Errorf("IMAP LIST lacks %q: %q", box, names)
			continue
		}
		if _, err := cl.Select(box, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			t.Fatalf("SELECT %s: %v", box, err)
		}
		sec := &imap.FetchItemBodySection{Peek: true}
		msgs, err := cl.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
		if err != nil {
			t.Fatalf("FETCH in %s: %v", box, err)
		}
		for _, w := range want {
			found := false
			for _, m := range msgs {
				if !bytes.Equal(m.FindBodySection(sec), w.Content) {
					continue
				}
				found = true
				var flags []string
				for _, fl := range m.Flags {
					if fl != `\Recent` {
						flags = append(flags, string(fl))
					}
				}
				slices.Sort(flags)
				if !slices.Equal(flags, w.Flags) || !m.InternalDate.Equal(w.Date) {
					t.Errorf("IMAP %s %q: flags %q date %v, want %q %v", box, w.Subject, flags, m.InternalDate, w.Flags, w.Date)
				}
			}
			if !found {
				t.Errorf("IMAP: %q not in %s", w.Subject, box)
			}
		}
	}
}
