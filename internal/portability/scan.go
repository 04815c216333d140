package portability

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
)

// Kinds of sources that Scan detects or can be told.
const (
	SourceMaildir  = "maildir"
	SourceMbox     = "mbox"
	SourceCalendar = "ics"
	SourceContacts = "vcf"
	SourceFiles    = "files"
	SourceExport   = "export" // an unpacked kreide export
)

// Sources are the names ScanOptions.Kind takes.
var Sources = []string{SourceMaildir, SourceMbox, SourceCalendar, SourceContacts, SourceFiles, SourceExport}

// ImportRoot is the folder of the file tree that imported files go into.
const ImportRoot = "Imported"

// ScanOptions steer Scan.
type ScanOptions struct {
	// Kind forces what the path is (one of Sources); "" detects it.
	Kind string
	// Mailbox is the mailbox an mbox goes into (default: the file's name),
	// or the mailbox a Maildir's folders go under (default: the top level,
	// its INBOX into INBOX).
	Mailbox string
	// Collection is the calendar or address book (by name) that calendar
	// objects and contacts go into; it is created if needed. Default: the
	// account's default calendar, task list and address book for files at
	// the top of the path, and one named after their folder for the others.
	Collection string
}

// Scan looks at path, detects what it holds and lists the items to import.
// Close the plan when done.
func Scan(path string, o ScanOptions) (*Plan, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, unwrapPath(err))
	}
	p := &Plan{root: abs}
	kind := o.Kind
	if kind == "" {
		if kind, err = detect(abs, fi); err != nil {
			return nil, err
		}
	}
	if !slices.Contains(Sources, kind) {
		return nil, fmt.Errorf("unknown kind %q (want one of %s)", kind, strings.Join(Sources, ", "))
	}
	base := filepath.Base(abs)
	switch kind {
	case SourceMaildir:
		if !fi.IsDir() {
			return nil, fmt.Errorf("%s is a file, not a Maildir folder", path)
		}
		err = p.scanMaildir(abs, cleanMailbox(o.Mailbox))
	case SourceMbox:
		err = p.scanMboxes(abs, fi, o)
	case SourceCalendar, SourceContacts:
		err = p.scanDAV(abs, fi, o)
	case SourceFiles:
		err = p.scanFiles(abs, fi, ImportRoot+"/"+base)
	case SourceExport:
		err = p.scanExport(abs, o)
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	if p.What == "" {
		p.What = kind
	}
	return p, nil
}

// head reads the first bytes of a file.
func head(path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	buf := make([]byte, 4096)
	n, _ := io.ReadFull(f, buf)
	return buf[:n]
}

// detect tells what path is.
func detect(path string, fi fs.FileInfo) (string, error) {
	if !fi.IsDir() {
		switch h := head(path); {
		case isCalendarFile(path, h):
			return SourceCalendar, nil
		case isContactsFile(path, h):
			return SourceContacts, nil
		case looksLikeMbox(h):
			return SourceMbox, nil
		}
		return SourceFiles, nil
	}
	if isMaildir(path) {
		return SourceMaildir, nil
	}
	if isMaildir(filepath.Join(path, "Maildir")) || strings.Contains(string(head(filepath.Join(path, "README.txt"))), exportMarker) {
		return SourceExport, nil
	}
	dav, mbox, other := 0, 0, 0
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == path {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if isMaildir(p) {
				other++ // a Maildir inside: let the admin point at it
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if info, err := d.Info(); err == nil && info.Size() == 0 {
			return nil // an empty mail folder, or an empty file: says nothing
		}
		h := head(p)
		switch ext := strings.ToLower(filepath.Ext(p)); {
		case isCalendarFile(p, h) || isContactsFile(p, h):
			dav++
		case ext == ".msf" || ext == ".dat":
		case looksLikeMbox(h) || ext == ".mbox":
			mbox++
		default:
			other++
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	switch {
	case other == 0 && dav > 0 && mbox == 0:
		return SourceCalendar, nil // .ics and .vcf files, both handled by scanDAV
	case other == 0 && mbox > 0 && dav == 0:
		return SourceMbox, nil
	}
	return SourceFiles, nil
}

func isCalendarFile(path string, h []byte) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return ext == ".ics" || ext == ".ical" || ext == ".ifb" || looksLike(h, "VCALENDAR")
}

func isContactsFile(path string, h []byte) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return ext == ".vcf" || ext == ".vcard" || looksLike(h, "VCARD")
}

// cleanMailbox trims a mailbox name given by the admin.
func cleanMailbox(name string) string {
	var levels []string
	for _, l := range strings.Split(name, "/") {
		if l = strings.TrimSpace(l); l != "" {
			levels = append(levels, l)
		}
	}
	if len(levels) > 0 && strings.EqualFold(levels[0], "INBOX") {
		levels[0] = "INBOX" // Thunderbird's "Inbox" and its subfolders
	}
	return strings.Join(levels, "/")
}

// scanMboxes adds one mbox file, or a folder of them (Thunderbird's "Local
// Folders": "Name" files and "Name.sbd" subfolders).
func (p *Plan) scanMboxes(abs string, fi fs.FileInfo, o ScanOptions) error {
	prefix := cleanMailbox(o.Mailbox)
	if !fi.IsDir() {
		mbox := prefix
		if mbox == "" {
			mbox = mboxName(abs)
		}
		_, err := p.scanMbox(abs, filepath.Base(abs), mbox)
		p.What = "an mbox file"
		return err
	}
	files := 0
	err := filepath.WalkDir(abs, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && path != abs {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		if ext := strings.ToLower(filepath.Ext(path)); ext == ".msf" || ext == ".dat" {
			return nil
		}
		rel, _ := filepath.Rel(abs, path)
		var levels []string
		for _, l := range strings.Split(filepath.ToSlash(rel), "/") {
			l = strings.TrimSuffix(l, ".sbd")
			levels = append(levels, l)
		}
		levels[len(levels)-1] = mboxName(path)
		mbox := strings.Join(levels, "/")
		if prefix != "" {
			mbox = prefix + "/" + mbox
		}
		if fi, err := d.Info(); err == nil && fi.Size() == 0 {
			return nil // an empty folder
		}
		if _, err := p.scanMbox(path, filepath.Join(filepath.Base(abs), rel), mbox); err != nil {
			p.Notes = append(p.Notes, err.Error()+": not imported")
			return nil
		}
		files++
		return nil
	})
	p.What = fmt.Sprintf("a folder of %d mbox file%s", files, plural(files))
	return err
}

// slug makes a collection's URL segment from a name: lower-case letters,
// digits and dashes.
func slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			b.WriteRune(r)
			dash = false
		case r == 'ä':
			b.WriteString("ae")
		case r == 'ö':
			b.WriteString("oe")
		case r == 'ü':
			b.WriteString("ue")
		case r == 'ß':
			b.WriteString("ss")
		default:
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
				dash = true
			}
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > 60 {
		s = strings.Trim(s[:60], "-")
	}
	if s == "" {
		s = "imported"
	}
	return s
}

// scanDAV adds .ics and .vcf files: one file, or a folder of them.
func (p *Plan) scanDAV(abs string, fi fs.FileInfo, o ScanOptions) error {
	collFor := func(dir string) (string, string) {
		if o.Collection != "" {
			return slug(o.Collection), o.Collection
		}
		if dir == abs || !fi.IsDir() {
			return "", ""
		}
		name := filepath.Base(dir)
		return slug(name), name
	}
	events, contacts := 0, 0
	one := func(path string) error {
		rel, _ := filepath.Rel(filepath.Dir(abs), path)
		coll, name := collFor(filepath.Dir(path))
		h := head(path)
		switch {
		case isCalendarFile(path, h) && !looksLike(h, "VCARD"):
			n, err := p.scanICS(path, rel, coll, name)
			events += n
			return err
		case isContactsFile(path, h):
			n, err := p.scanVCF(path, rel, coll, name)
			contacts += n
			return err
		}
		return fmt.Errorf("%s is neither an iCalendar (.ics) nor a vCard (.vcf) file", rel)
	}
	if !fi.IsDir() {
		if err := one(abs); err != nil {
			return err
		}
	} else {
		err := filepath.WalkDir(abs, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.HasPrefix(d.Name(), ".") && path != abs {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() || !d.Type().IsRegular() {
				return nil
			}
			if err := one(path); err != nil {
				// One unreadable file does not stop the others.
				rel, _ := filepath.Rel(filepath.Dir(abs), path)
				p.addBad(Item{Kind: KindEvent, Source: rel}, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	switch {
	case !fi.IsDir() && events > 0:
		p.What = "an iCalendar file"
	case !fi.IsDir():
		p.What = "a vCard file"
	default:
		p.What = "a folder of calendar and contact files"
	}
	return nil
}

// scanFiles adds the file or folder tree at abs under dest in the file
// tree.
func (p *Plan) scanFiles(abs string, fi fs.FileInfo, dest string) error {
	if !fi.IsDir() {
		name := filepath.Base(abs)
		p.add(&entry{item: Item{Kind: KindFile, Source: name, Size: fi.Size(), Path: ImportRoot + "/" + name, Date: fi.ModTime()},
			pieces: []piece{{file: abs, n: -1}}})
		p.What = "a file"
		return nil
	}
	base := filepath.Base(abs)
	err := filepath.WalkDir(abs, func(path string, d fs.DirEntry, err error) error {
		r, _ := filepath.Rel(abs, path)
		src := filepath.Join(base, r)
		if err != nil {
			if path == abs {
				return err
			}
			p.addBad(Item{Kind: KindFile, Source: src}, unwrapPath(err))
			return nil
		}
		target := dest
		if r != "." {
			target = dest + "/" + filepath.ToSlash(r)
		}
		switch {
		case d.IsDir():
			p.add(&entry{item: Item{Kind: KindFolder, Source: src, Path: target}})
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				p.addBad(Item{Kind: KindFile, Source: src}, unwrapPath(err))
				return nil
			}
			p.add(&entry{item: Item{Kind: KindFile, Source: src, Size: info.Size(), Path: target, Date: info.ModTime()},
				pieces: []piece{{file: path, n: -1}}})
		case d.Type()&fs.ModeSymlink != 0:
			p.Notes = append(p.Notes, fmt.Sprintf("%s is a symbolic link: not followed", src))
		default:
			p.Notes = append(p.Notes, fmt.Sprintf("%s is not a regular file: left out", src))
		}
		return nil
	})
	if p.What == "" {
		p.What = "a folder of files"
	}
	return err
}

// scanExport adds an unpacked kreide export: its Maildir, calendars,
// address books (each into the collection of its name) and files.
func (p *Plan) scanExport(abs string, o ScanOptions) error {
	var parts []string
	if md := filepath.Join(abs, "Maildir"); isMaildir(md) {
		if err := p.scanMaildir(md, cleanMailbox(o.Mailbox)); err != nil {
			return err
		}
		parts = append(parts, "mail")
	}
	for _, sub := range []string{"calendars", "contacts"} {
		ents, err := os.ReadDir(filepath.Join(abs, sub))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, de := range ents {
			if !de.Type().IsRegular() || strings.HasPrefix(de.Name(), ".") {
				continue
			}
			path := filepath.Join(abs, sub, de.Name())
			name := strings.TrimSuffix(de.Name(), filepath.Ext(de.Name()))
			coll, collName := name, ""
			if o.Collection != "" {
				coll, collName = slug(o.Collection), o.Collection
			}
			rel := filepath.Join(filepath.Base(abs), sub, de.Name())
			var err error
			if sub == "calendars" {
				_, err = p.scanICS(path, rel, coll, collName)
			} else {
				_, err = p.scanVCF(path, rel, coll, collName)
			}
			if err != nil {
				p.addBad(Item{Kind: KindEvent, Source: rel}, err)
			}
		}
		parts = append(parts, sub)
	}
	if files := filepath.Join(abs, "files"); dirExists(files) {
		fi, _ := os.Stat(files)
		if err := p.scanFiles(files, fi, ImportRoot+"/"+filepath.Base(abs)); err != nil {
			return err
		}
		parts = append(parts, "files")
	}
	p.What = "a kreide export (" + strings.Join(parts, ", ") + ")"
	return nil
}

func dirExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
