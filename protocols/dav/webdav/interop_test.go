package webdav

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"kreide/internal/interop"
)

// TestLitmus runs the whole litmus suite (basic, copymove, props, locks,
// http) against a plain-HTTP loopback listener: every test must pass.
func TestLitmus(t *testing.T) {
	bin := interop.Need(t, "litmus", "litmus")
	s := newServer(t)
	cmd := exec.Command(bin, s.files, testUser, testPass)
	cmd.Dir = t.TempDir() // litmus writes debug.log here
	out, err := cmd.CombinedOutput()
	summaries := regexp.MustCompile("<- summary for `(\\w+)': of (\\d+) tests run: (\\d+) passed, (\\d+) failed").FindAllStringSubmatch(string(out), -1)
	passed := map[string]bool{}
	for _, m := range summaries {
		t.Logf("litmus %s: %s of %s passed", m[1], m[3], m[2])
		passed[m[1]] = m[2] == m[3] && m[4] == "0"
	}
	for _, g := range []string{"basic", "copymove", "props", "locks", "http"} {
		if !passed[g] {
			t.Errorf("litmus group %s did not pass", g)
		}
	}
	if err != nil || t.Failed() || regexp.MustCompile(`(?m)\bFAIL\b|SKIPPED`).Match(out) {
		t.Fatalf("litmus: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "WARNING"); n > 0 {
		t.Logf("litmus issued %d warnings:\n%s", n, out)
	}
}

// genTree writes n files of seeded random sizes and contents into dir, in
// nested folders with awkward names, and returns path -> SHA-256.
func genTree(t testing.TB, dir string, n int) map[string][32]byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(6, 6))
	folders := []string{"", "Klasse 5b", "Klasse 5b/Mathe", "Übungen & Tests", "Übungen & Tests/2026 #1", "a/b/c/d", "100%", "日本語"}
	sums := map[string][32]byte{}
	for i := range n {
		size := rng.IntN(8 << 10)
		switch {
		case i%97 == 0:
			size = 300<<10 + rng.IntN(700<<10)
		case i%13 == 0:
			size = 60<<10 + rng.IntN(10<<10) // around the inline limit
		case i%50 == 0:
			size = 0
		}
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		name := fmt.Sprintf("file %04d-ä+%%.bin", i)
		p := filepath.Join(dir, folders[i%len(folders)], name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		sums[filepath.ToSlash(rel)] = sha256.Sum256(data)
	}
	return sums
}

func hashTree(t testing.TB, dir string) map[string][32]byte {
	t.Helper()
	sums := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		sums[filepath.ToSlash(rel)] = sha256.Sum256(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

// TestRclone copies a tree of 1,000 files up and down with rclone's WebDAV
// backend (vendor other) and compares every hash.
func TestRclone(t *testing.T) {
	bin := interop.Need(t, "rclone", "rclone")
	s := newServer(t)
	home := t.TempDir()
	src, dst := filepath.Join(home, "src"), filepath.Join(home, "dst")
	want := genTree(t, src, 1000)
	obscured, err := exec.Command(bin, "obscure", testPass).Output()
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) {
		t.Helper()
		args = append(args, "--config", filepath.Join(home, "rclone.conf"), "--webdav-url", s.files,
			"--webdav-vendor", "other", "--webdav-user", testUser, "--webdav-pass", strings.TrimSpace(string(obscured)),
			"--transfers", "8", "--checkers", "8", "--retries", "1", "--low-level-retries", "1", "-q")
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_CACHE_HOME="+home)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("rclone %s: %v\n%s", args[0], err, out)
		}
	}
	run("copy", src, ":webdav:up")
	run("copy", ":webdav:up", dst)
	got := hashTree(t, dst)
	if len(got) != len(want) {
		t.Fatalf("downloaded %d files, uploaded %d", len(got), len(want))
	}
	for p, h := range want {
		if got[p] != h {
			t.Fatalf("%s: hash differs after the round trip", p)
		}
	}
	// The store holds exactly the tree.
	a := s.account(t)
	var count func(string) int
	count = func(p string) int {
		list, err := a.Files().ReadDir(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, fi := range list {
			if fi.Dir {
				n += count(p + "/" + fi.Name)
			} else {
				n++
			}
		}
		return n
	}
	if n := count("up"); n != 1000 {
		t.Fatalf("store has %d files", n)
	}
	t.Logf("rclone: 1000 files up and down, every SHA-256 matches")
}

// TestCadaver drives cadaver through a scripted session; it reads the
// credentials from ~/.netrc.
func TestCadaver(t *testing.T) {
	bin := interop.Need(t, "cadaver", "cadaver")
	s := newServer(t)
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ".netrc"), []byte("machine 127.0.0.1\nlogin "+testUser+"\npassword "+testPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	content := bytes.Repeat([]byte("Zeugnisse bis Freitag\n"), 5000)
	os.WriteFile(filepath.Join(home, "upload.txt"), content, 0o644)
	script := strings.Join([]string{
		"mkcol Ordner",
		"put upload.txt notiz.txt",
		"ls",
		"move notiz.txt Ordner/notiz.txt",
		"ls Ordner",
		"get Ordner/notiz.txt download.txt",
		"put upload.txt weg.txt",
		"delete weg.txt",
		"propset Ordner/notiz.txt fach Mathe",
		"propget Ordner/notiz.txt fach",
		"lock Ordner/notiz.txt",
		"unlock Ordner/notiz.txt",
		"quit",
	}, "\n") + "\n"
	cmd := exec.Command(bin, s.files)
	cmd.Dir = home
	cmd.Env = append(os.Environ(), "HOME="+home)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cadaver: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "failed") {
		t.Fatalf("cadaver reported a failure:\n%s", out)
	}
	got, err := os.ReadFile(filepath.Join(home, "download.txt"))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("downloaded file differs (%v)\n%s", err, out)
	}
	if !strings.Contains(string(out), "Mathe") || !strings.Contains(string(out), "notiz.txt") {
		t.Fatalf("cadaver output:\n%s", out)
	}
	a := s.account(t)
	if _, err := a.Files().Stat(ctx, "weg.txt"); err == nil {
		t.Fatal("deleted file still there")
	}
	if _, err := a.Files().Stat(ctx, "notiz.txt"); err == nil {
		t.Fatal("moved file still at its source")
	}
	t.Logf("cadaver session:\n%s", out)
}
