package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kreide/internal/portability/portabilitytest"
)

// On a terminal, import and export ask for secrets without echo and draw a
// progress bar; the archive never goes to the terminal.
func TestImportExportOnTerminal(t *testing.T) {
	cfg, dataDir := writeConfig(t, "")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ok(t, "password one\n", "user", "add", "anna@school.test", "-config", cfg)
	f := portabilitytest.Write(t, t.TempDir())

	out, code := onTerminal(t, [][2]string{{"Password of anna@school.test: ", "password one"}},
		"import", "anna@school.test", f.Files, "-config", cfg)
	if code != 0 || !strings.Contains(out, "\r\x1b[K[##############################] 100%  imported 10/10 items, 5.1 MiB/5.1 MiB") ||
		strings.Contains(out, "password one") {
		t.Fatalf("import on a terminal: exit %d:\n%q", code, out)
	}

	archive := filepath.Join(t.TempDir(), "anna.tar.gpg")
	out, code = onTerminal(t, [][2]string{{"Password of anna@school.test: ", "password one"},
		{"Passphrase for the archive: ", "a long passphrase"}, {"Type it again: ", "a long passphrase"}},
		"export", "anna@school.test", "-passphrase", "-o", archive, "-config", cfg)
	if code != 0 || !strings.Contains(out, "100%  exported") || strings.Contains(out, "a long passphrase") {
		t.Fatalf("export on a terminal: exit %d:\n%q", code, out)
	}
	out, code = onTerminal(t, [][2]string{{"Password of anna@school.test: ", "password one"},
		{"Passphrase for the archive: ", "a long passphrase"}, {"Type it again: ", "another passphrase"}},
		"export", "anna@school.test", "-passphrase", "-o", archive+".2", "-config", cfg)
	if code != 1 || !strings.Contains(out, "the two passphrases differ") {
		t.Fatalf("export with two passphrases: exit %d:\n%q", code, out)
	}
	out, code = onTerminal(t, nil, "export", "anna@school.test", "-passphrase", "-config", cfg)
	if code != 2 || !strings.Contains(out, "give -o FILE or redirect standard output") {
		t.Fatalf("export to a terminal: exit %d:\n%q", code, out)
	}
}

func TestImportExportHelp(t *testing.T) {
	for _, cmd := range []string{"import", "export"} {
		r := ok(t, "", cmd, "--help")
		if !strings.Contains(r.stdout, "Usage: kreide "+cmd) || !strings.Contains(r.stdout, "Example:\n  kreide "+cmd) {
			t.Errorf("kreide %s --help:\n%s", cmd, r.stdout)
		}
	}
	if r := ok(t, "", "--help"); !strings.Contains(r.stdout, "import ") || !strings.Contains(r.stdout, "export ") {
		t.Errorf("kreide --help does not list import and export:\n%s", r.stdout)
	}
	fails(t, 2, "missing PATH", "", "import", "anna@school.test")
	fails(t, 2, "missing ADDRESS", "", "export")
}
