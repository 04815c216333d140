package imap

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"kreide/internal/interop"
	"kreide/store"
)

// run runs a client program with a time limit and returns its output.
func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out.String())
	}
	return out.Bytes()
}

func (e *testEnv) certFile(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(path, e.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// bulkAppend stores n small messages in a mailbox through the store,
// concurrently (the store batches their fsyncs).
func bulkAppend(t testing.TB, a *store.Account, mailbox string, n int, subject func(int) string) {
	t.Helper()
	mb, err := a.MailboxByName(ctx, mailbox)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			msg := simpleMessage(subject(i), fmt.Sprintf("Nachricht Nummer %d.\r\nViele Grüße", i))
			if _, err := a.Append(ctx, mb.ID, bytes.NewReader(msg), nil, time.Time{}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// maildir lists a Maildir folder: Subject -> flags (the letters after ":2,").
func maildir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, sub := range []string{"cur", "new"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range entries {
			raw, err := os.ReadFile(filepath.Join(dir, sub, de.Name()))
			if err != nil {
				t.Fatal(err)
			}
			m := regexp.MustCompile(`(?m)^Subject: (.*?)\r?$`).FindSubmatch(raw)
			if m == nil {
				t.Fatalf("%s: no subject", de.Name())
			}
			flags := ""
			if i := strings.Index(de.Name(), ":2,"); i >= 0 {
				flags = de.Name()[i+3:]
			}
			out[string(m[1])] = flags
		}
	}
	return out
}

// maildirFile finds the file of the message with subject.
func maildirFile(t *testing.T, dir, subject string) string {
	t.Helper()
	for _, sub := range []string{"cur", "new"} {
		entries, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, de := range entries {
			p := filepath.Join(dir, sub, de.Name())
			raw, _ := os.ReadFile(p)
			if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\nSubject: "+subject+"\n")) {
				return p
			}
		}
	}
	t.Fatalf("no message %q in %s", subject, dir)
	return ""
}

// serverMailbox lists a mailbox on the server: Subject -> flags.
func serverMailbox(t *testing.T, a *store.Account, name string) map[string][]string {
	t.Helper()
	mb, err := a.MailboxByName(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	err = a.Messages(ctx, mb.ID, nil, store.FetchOptions{Structure: true}, func(m *store.Message) error {
		out[m.Structure.Envelope.Subject] = m.Flags
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMbsync syncs a 1,000-message mailbox both ways with isync's mbsync
// over IMAPS, then changes flags, moves and deletes on either side and
// checks that the other side follows.
func TestMbsync(t *testing.T) {
	mbsync := interop.Need(t, "mbsync", "isync")
	e := newEnv(t)
	subject := func(i int) string { return fmt.Sprintf("Nachricht %04d", i) }
	bulkAppend(t, e.acct, "INBOX", 1000, subject)
	if _, err := e.acct.CreateMailbox(ctx, "Klassen/7b", ""); err != nil {
		t.Fatal(err)
	}
	bulkAppend(t, e.acct, "Klassen/7b", 3, func(i int) string { return fmt.Sprintf("Klasse %d", i) })

	local := t.TempDir()
	_, port, _ := strings.Cut(e.tlsAddr, ":")
	tlsKey := "SSLType"
	if out, _ := exec.Command(mbsync, "--version").Output(); !bytes.HasPrefix(out, []byte("isync 1.4")) {
		tlsKey = "TLSType"
	}
	cfg := filepath.Join(t.TempDir(), "mbsyncrc")
	err := os.WriteFile(cfg, []byte(fmt.Sprintf(`FSync no

IMAPAccount kreide
Host 127.0.0.1
Port %s
User %s
Pass "%s"
%s IMAPS
CertificateFile %s
AuthMechs PLAIN

IMAPStore remote
Account kreide

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel kreide
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
`, port, testUser, testPass, tlsKey, e.certFile(t), local, local)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	sync := func() {
		t.Helper()
		start := time.Now()
		if out := run(t, mbsync, "-c", cfg, "-a"); len(out) > 0 {
			t.Logf("mbsync: %s", out)
		}
		t.Logf("mbsync took %v", time.Since(start))
	}

	// 1. Initial download.
	sync()
	inbox := maildir(t, filepath.Join(local, "INBOX"))
	if len(inbox) != 1000 {
		t.Fatalf("Maildir INBOX has %d messages, want 1000", len(inbox))
	}
	for i := range 1000 {
		if _, ok := inbox[subject(i)]; !ok {
			t.Fatalf("%s missing locally", subject(i))
		}
	}
	if got := maildir(t, filepath.Join(local, "Klassen", "7b")); len(got) != 3 {
		t.Errorf("Klassen/7b has %d messages locally", len(got))
	}
	raw, _ := os.ReadFile(maildirFile(t, filepath.Join(local, "INBOX"), subject(7)))
	// mbsync stores local line ends (LF).
	if !bytes.Contains(raw, []byte("Nachricht Nummer 7.\nViele Grüße")) {
		t.Errorf("downloaded message differs: %q", raw)
	}

	// 2. Local changes: flags, a deletion, a new message, a move (mbsync
	// sees a move as a new message in one folder and a deletion in the other).
	rename := func(p, flags string) {
		base, _, _ := strings.Cut(filepath.Base(p), ":2,")
		np := filepath.Join(filepath.Dir(filepath.Dir(p)), "cur", base+":2,"+flags)
		if err := os.Rename(p, np); err != nil {
			t.Fatal(err)
		}
	}
	rename(maildirFile(t, filepath.Join(local, "INBOX"), subject(1)), "S")
	rename(maildirFile(t, filepath.Join(local, "INBOX"), subject(2)), "FS")
	if err := os.Remove(maildirFile(t, filepath.Join(local, "INBOX"), subject(3))); err != nil {
		t.Fatal(err)
	}
	moved := maildirFile(t, filepath.Join(local, "INBOX"), subject(4))
	if err := os.Rename(moved, filepath.Join(local, "Archive", "cur", "moved-locally:2,S")); err != nil {
		t.Fatal(err)
	}
	newMsg := simpleMessage("Lokal geschrieben", "Vom Laptop.")
	if err := os.WriteFile(filepath.Join(local, "INBOX", "new", "local-1"), newMsg, 0o600); err != nil {
		t.Fatal(err)
	}
	sync()
	srv := serverMailbox(t, e.acct, "INBOX")
	if !sameStrings(srv[subject(1)], []string{`\Seen`}) || !sameStrings(srv[subject(2)], []string{`\Flagged`, `\Seen`}) {
		t.Errorf("server flags after local change: %v, %v", srv[subject(1)], srv[subject(2)])
	}
	if _, ok := srv[subject(3)]; ok {
		t.Error("message deleted locally is still on the server")
	}
	if _, ok := srv[subject(4)]; ok {
		t.Error("message moved locally is still in the server's INBOX")
	}
	if _, ok := srv["Lokal geschrieben"]; !ok || len(srv) != 999 {
		t.Errorf("server INBOX has %d messages; new local message there: %v", len(srv), ok)
	}
	if arch := serverMailbox(t, e.acct, "Archive"); !sameStrings(arch[subject(4)], []string{`\Seen`}) {
		t.Errorf("server Archive after local move: %v", arch)
	}

	// 3. Server changes through IMAP: flags, a move, an expunge, a new message.
	c := e.selectInbox(nil)
	uidOf := func(subj string) imap.UID {
		data, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: subj}}}, nil).Wait()
		if err != nil || len(data.AllUIDs()) != 1 {
			t.Fatalf("search %s: %v %v", subj, data, err)
		}
		return data.AllUIDs()[0]
	}
	c.Store(imap.UIDSetNum(uidOf(subject(10))), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged, imap.FlagAnswered}}, nil).Close()
	c.Store(imap.UIDSetNum(uidOf(subject(11))), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Move(imap.UIDSetNum(uidOf(subject(12))), "Archive").Wait(); err != nil {
		t.Fatal(err)
	}
	appendMsg(t, c, "INBOX", simpleMessage("Vom Server", "Neu."), nil)
	sync()
	inbox = maildir(t, filepath.Join(local, "INBOX"))
	if inbox[subject(10)] != "FR" {
		t.Errorf("local flags of %s = %q, want FR", subject(10), inbox[subject(10)])
	}
	if _, ok := inbox[subject(11)]; ok {
		t.Error("message expunged on the server is still local")
	}
	if _, ok := inbox[subject(12)]; ok {
		t.Error("message moved on the server is still in the local INBOX")
	}
	if _, ok := inbox["Vom Server"]; !ok || len(inbox) != 998 {
		t.Errorf("local INBOX has %d messages; server's new one there: %v", len(inbox), ok)
	}
	arch := maildir(t, filepath.Join(local, "Archive"))
	if _, ok := arch[subject(12)]; !ok || len(arch) != 2 {
		t.Errorf("local Archive after the server's move: %v", arch)
	}

	// 4. A sync without changes changes nothing.
	sync()
	if again := maildir(t, filepath.Join(local, "INBOX")); len(again) != 998 {
		t.Errorf("idempotent sync: %d messages", len(again))
	}
}

func sameStrings(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// TestPythonImaplib drives the server with Python's imaplib over IMAPS:
// SEARCH CHARSET UTF-8 and partial FETCH of non-ASCII messages.
func TestPythonImaplib(t *testing.T) {
	py := interop.NeedPython(t, "imaplib", "python3")
	e := newEnv(t)
	c := e.login(nil)
	latin1 := fixture(t, "latin1.eml")
	utf8 := fixture(t, "utf8.eml")
	appendMsg(t, c, "INBOX", latin1, nil)
	appendMsg(t, c, "INBOX", utf8, nil)
	appendMsg(t, c, "INBOX", fixture(t, "nested.eml"), nil)
	_, port, _ := strings.Cut(e.tlsAddr, ":")
	script := filepath.Join(t.TempDir(), "client.py")
	err := os.WriteFile(script, []byte(`import base64, imaplib, json, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
M = imaplib.IMAP4_SSL("127.0.0.1", int(sys.argv[1]), ssl_context=ctx)
M.login(sys.argv[3], sys.argv[4])
M.select("INBOX")
out = {}
def search(charset, key, text):
    M.literal = text.encode("utf-8")
    typ, data = M.uid("SEARCH", "CHARSET", charset, key)
    return [typ] + data[0].decode().split()
out["subject"] = search("UTF-8", "SUBJECT", "grüße aus köln")
out["body_latin1"] = search("UTF-8", "BODY", "KÜHLSCHRANK")
out["body_base64"] = search("UTF-8", "BODY", "überlingen")
out["text_qp"] = search("UTF-8", "TEXT", "für die 7b hängt")
out["none"] = search("UTF-8", "BODY", "gibt es nicht")
typ, data = M.uid("FETCH", "1", "(BODY.PEEK[TEXT]<4.10>)")
out["partial_latin1"] = base64.b64encode(data[0][1]).decode()
typ, data = M.uid("FETCH", "2", "(BINARY.PEEK[1]<14.20>)")
out["partial_binary"] = base64.b64encode(data[0][1]).decode()
typ, data = M.uid("FETCH", "3", "(BODY.PEEK[1.1]<17.25>)")
out["partial_part"] = base64.b64encode(data[0][1]).decode()
typ, data = M.uid("FETCH", "2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])")
out["header_fields"] = base64.b64encode(data[0][1]).decode()
typ, data = M.uid("FETCH", "1:3", "(FLAGS)")
out["flags"] = [d.decode() for d in data]
M.logout()
json.dump(out, sys.stdout)
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	raw := run(t, py, script, port, e.certFile(t), testUser, testPass)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("python output %q: %v", raw, err)
	}
	want := map[string][]any{
		"subject":     {"OK", "1"},
		"body_latin1": {"OK", "1"},
		"body_base64": {"OK", "2"},
		"text_qp":     {"OK", "3"},
		"none":        {"OK"},
	}
	for k, w := range want {
		got, _ := out[k].([]any)
		if !slices.Equal(got, w) {
			t.Errorf("%s: %v, want %v", k, got, w)
		}
	}
	b64 := func(k string) []byte {
		b, err := base64.StdEncoding.DecodeString(out[k].(string))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	hdr := headerEnd(latin1)
	if got := b64("partial_latin1"); !bytes.Equal(got, latin1[hdr+4:hdr+14]) || !bytes.Contains(got, []byte("K\xe4se")) {
		t.Errorf("partial Latin-1 = %q", got)
	}
	utf8Body := "Liebe Eltern,\r\nder Ausflug nach Überlingen findet am Freitag statt. Bitte Regenjacke mitbringen ☔.\r\n"
	if got := string(b64("partial_binary")); got != utf8Body[14:34] {
		t.Errorf("partial BINARY = %q, want %q", got, utf8Body[14:34])
	}
	if got := string(b64("partial_part")); got != "der Wochenplan f=C3=BCr d" {
		t.Errorf("partial part = %q", got)
	}
	if got := string(b64("header_fields")); !strings.HasPrefix(got, "From: Zoë Ångström <zoe@example.net>\r\nSubject: =?UTF-8?B?") || !strings.HasSuffix(got, "\r\n\r\n") {
		t.Errorf("HEADER.FIELDS = %q", got)
	}
	if flags, _ := out["flags"].([]any); len(flags) != 3 || strings.Contains(fmt.Sprint(flags), `\Seen`) {
		t.Errorf("PEEK fetches changed flags: %v", flags)
	}
}

// TestCurl fetches a message with curl over IMAPS.
func TestCurl(t *testing.T) {
	curl := interop.Need(t, "curl", "curl")
	e := newEnv(t)
	c := e.login(nil)
	raw := fixture(t, "nested.eml")
	uid := appendMsg(t, c, "INBOX", raw, nil)
	_, port, _ := strings.Cut(e.tlsAddr, ":")
	url := fmt.Sprintf("imaps://127.0.0.1:%s/INBOX;UID=%d", port, uid)
	got := run(t, curl, "-sS", "--cacert", e.certFile(t), "--user", testUser+":"+testPass, url)
	if !bytes.Equal(got, raw) {
		t.Errorf("curl got %d bytes, want the %d-byte message:\n%q", len(got), len(raw), got)
	}
	got = run(t, curl, "-sS", "--cacert", e.certFile(t), "--user", testUser+":"+testPass, url+";SECTION=1.1")
	if string(got) != "Hallo zusammen,\r\nder Wochenplan f=C3=BCr die 7b h=C3=A4ngt an.\r\nGr=C3=BC=C3=9Fe J=C3=BCrgen" {
		t.Errorf("curl SECTION=1.1 = %q", got)
	}
	// A wrong password fails.
	cmd := exec.Command(curl, "-sS", "--cacert", e.certFile(t), "--user", testUser+":wrong", url)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("curl with a wrong password succeeded: %q", out)
	}
}
