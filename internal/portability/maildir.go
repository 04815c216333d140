package portability

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"kreide/store"
)

// isMaildir reports whether dir has the cur/ or new/ of a Maildir.
func isMaildir(dir string) bool {
	for _, sub := range []string{"cur", "new"} {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err == nil && fi.IsDir() {
			return true
		}
	}
	return false
}

// maildirFolder is one folder of a Maildir tree: its directory and mailbox.
type maildirFolder struct {
	dir     string
	mailbox string
}

// maildirFolders lists root (INBOX, or prefix) and its subfolders:
// Maildir++ ".Folder.Sub" directories and nested ("fs" layout) ones.
func maildirFolders(root, prefix string) ([]maildirFolder, error) {
	top := "INBOX"
	if prefix != "" {
		top = prefix
	}
	var out []maildirFolder
	if isMaildir(root) {
		out = append(out, maildirFolder{root, top})
	}
	var walk func(dir string, parent []string) error
	walk = func(dir string, parent []string) error {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, de := range ents {
			name := de.Name()
			if !de.IsDir() || name == "cur" || name == "new" || name == "tmp" || name == "." || name == ".." {
				continue
			}
			path := filepath.Join(dir, name)
			var levels []string
			if strings.HasPrefix(name, ".") {
				if len(parent) > 0 {
					continue // Maildir++ folders live only at the root
				}
				for _, l := range strings.Split(name[1:], ".") {
					if l != "" {
						levels = append(levels, decodeMaildirName(l))
					}
				}
				if len(levels) == 0 {
					continue
				}
			} else {
				levels = append(slices.Clone(parent), decodeMaildirName(name))
			}
			if isMaildir(path) {
				mbox := strings.Join(levels, "/")
				if prefix != "" {
					mbox = prefix + "/" + mbox
				}
				out = append(out, maildirFolder{path, mbox})
			}
			if !strings.HasPrefix(name, ".") {
				if err := walk(path, levels); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(root, nil); err != nil {
		return nil, err
	}
	return out, nil
}

// decodeMaildirName decodes one level of a Maildir folder name: Dovecot's
// "\2e"-style escapes, then modified UTF-7.
func decodeMaildirName(s string) string {
	if strings.Contains(s, `\`) {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			if s[i] == '\\' && i+2 < len(s) {
				if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
					b.WriteByte(byte(v))
					i += 2
					continue
				}
			}
			b.WriteByte(s[i])
		}
		s = b.String()
	}
	return decodeMUTF7(s)
}

// encodeMaildirName is decodeMaildirName's inverse for one level.
func encodeMaildirName(s string) string {
	s = encodeMUTF7(s)
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '.', '\\', '/', '~':
			fmt.Fprintf(&b, `\%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Maildir flag letters (the "info" after ":2,") and their IMAP flags.
var maildirFlags = []struct {
	letter byte
	flag   string
}{
	{'D', store.FlagDraft},
	{'F', store.FlagFlagged},
	{'P', "$Forwarded"},
	{'R', store.FlagAnswered},
	{'S', store.FlagSeen},
	{'T', store.FlagDeleted},
}

// maildirInfo splits a Maildir file name into its unique part and the
// flag letters after ":2," (also "!2," and ";2," where ':' is not allowed).
func maildirInfo(name string) (flags string, ok bool) {
	for _, sep := range []string{":2,", "!2,", ";2,"} {
		if i := strings.LastIndex(name, sep); i >= 0 {
			return name[i+3:], true
		}
	}
	return "", false
}

// readKeywords reads a Dovecot dovecot-keywords file: "N keyword" lines,
// N 0..25 standing for the letters a..z in file names.
func readKeywords(dir string) map[byte]string {
	f, err := os.Open(filepath.Join(dir, "dovecot-keywords"))
	if err != nil {
		return nil
	}
	defer f.Close()
	out := make(map[byte]string)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		num, kw, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 0 || n > 25 || kw == "" {
			continue
		}
		out[byte('a'+n)] = kw
	}
	return out
}

// scanMaildir adds every message of the Maildir tree at root.
func (p *Plan) scanMaildir(root, prefix string) error {
	folders, err := maildirFolders(root, prefix)
	if err != nil {
		return err
	}
	if len(folders) == 0 {
		return fmt.Errorf("%s is not a Maildir (no cur/ or new/ folder)", root)
	}
	for _, f := range folders {
		if err := p.scanMaildirFolder(root, f); err != nil {
			return err
		}
	}
	if p.What == "" {
		p.What = fmt.Sprintf("a Maildir with %d folder%s", len(folders), plural(len(folders)))
	}
	return nil
}

type maildirMsg struct {
	path  string
	size  int64
	date  time.Time
	flags []string
}

func (p *Plan) scanMaildirFolder(root string, f maildirFolder) error {
	keywords := readKeywords(f.dir)
	var msgs []maildirMsg
	for _, sub := range []string{"cur", "new"} {
		dir := filepath.Join(f.dir, sub)
		ents, err := os.ReadDir(dir)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		for _, de := range ents {
			name := de.Name()
			if strings.HasPrefix(name, ".") || !de.Type().IsRegular() {
				continue
			}
			fi, err := de.Info()
			if err != nil {
				continue // gone meanwhile (a running mail server moved it)
			}
			m := maildirMsg{path: filepath.Join(dir, name), size: fi.Size(), date: fi.ModTime()}
			if info, ok := maildirInfo(name); ok && sub == "cur" {
				for i := 0; i < len(info); i++ {
					c := info[i]
					for _, mf := range maildirFlags {
						if mf.letter == c {
							m.flags = append(m.flags, mf.flag)
						}
					}
					if kw, ok := keywords[c]; ok {
						m.flags = append(m.flags, kw)
					}
				}
			}
			msgs = append(msgs, m)
		}
	}
	// In the order they arrived, so UIDs follow it.
	slices.SortStableFunc(msgs, func(a, b maildirMsg) int {
		if c := a.date.Compare(b.date); c != 0 {
			return c
		}
		return strings.Compare(a.path, b.path)
	})
	for _, m := range msgs {
		rel, err := filepath.Rel(filepath.Dir(root), m.path)
		if err != nil {
			rel = m.path
		}
		p.add(&entry{
			item:   Item{Kind: KindMessage, Source: rel, Size: m.size, Mailbox: f.mailbox, Flags: m.flags, Date: m.date},
			pieces: []piece{{file: m.path, n: -1}},
		})
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
