package portability

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"kreide/store"
)

// exportMarker starts the README of an export; Scan recognises an unpacked
// export by it.
const exportMarker = "kreide export"

const exportReadme = exportMarker + ` of %s, %s

Maildir/             the mail: one Maildir++ tree (INBOX at the top, other
                     mailboxes in ".Name.Sub" folders); flags in the file
                     names (:2,DFPRST), keywords in dovecot-keywords
calendars/NAME.ics   one iCalendar file per calendar or task list
contacts/NAME.vcf    one vCard file per address book
files/               the files

Mail programs and servers that read Maildir (Dovecot, mutt, mbsync), any
calendar and address book program, and 'kreide import' read these back.
`

// Export writes everything of the account a to w as a tar stream and
// calls progress after each item. It does not close w.
func Export(ctx context.Context, a *store.Account, w io.Writer, progress func(Progress)) error {
	if progress == nil {
		progress = func(Progress) {}
	}
	x := &exporter{a: a, tw: tar.NewWriter(w), progress: progress, now: time.Now()}
	if err := x.count(ctx); err != nil {
		return err
	}
	progress(x.p)
	readme := fmt.Sprintf(exportReadme, a.Login(), x.now.UTC().Format(time.RFC3339))
	if err := x.file("README.txt", []byte(readme), x.now); err != nil {
		return err
	}
	for _, step := range []func(context.Context) error{x.mail, x.dav, x.files} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	if err := x.tw.Close(); err != nil {
		return err
	}
	progress(x.p)
	return nil
}

type exporter struct {
	a        *store.Account
	tw       *tar.Writer
	progress func(Progress)
	p        Progress
	now      time.Time
}

func (x *exporter) done(n int64) {
	x.p.Done++
	x.p.DoneBytes += n
	x.progress(x.p)
}

// count fills in the totals.
func (x *exporter) count(ctx context.Context) error {
	mboxes, err := x.a.Mailboxes(ctx)
	if err != nil {
		return err
	}
	for _, mb := range mboxes {
		x.p.Items += int64(mb.Messages)
		x.p.Bytes += mb.Size
	}
	for _, kind := range []store.CollectionKind{store.KindCalendar, store.KindAddressBook} {
		colls, err := x.a.Collections(ctx, kind)
		if err != nil {
			return err
		}
		for _, c := range colls {
			err := x.a.ListObjects(ctx, c.ID, store.ObjectOptions{}, func(o *store.Object) error {
				x.p.Bytes += o.Size
				return nil
			})
			if err != nil {
				return err
			}
			x.p.Items++
		}
	}
	return x.walkFiles(ctx, "", func(p string, fi store.FileInfo) error {
		x.p.Items++
		x.p.Bytes += fi.Size
		return nil
	})
}

func (x *exporter) dir(name string, mod time.Time) error {
	return x.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o700, ModTime: mod, Format: tar.FormatPAX})
}

func (x *exporter) file(name string, data []byte, mod time.Time) error {
	if err := x.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o600, ModTime: mod, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err := x.tw.Write(data)
	return err
}

// maildirDir is where mailbox name goes in the Maildir++ tree.
func maildirDir(name string) string {
	if name == "INBOX" {
		return "Maildir"
	}
	var levels []string
	for _, l := range strings.Split(name, "/") {
		levels = append(levels, encodeMaildirName(l))
	}
	return "Maildir/." + strings.Join(levels, ".")
}

func (x *exporter) mail(ctx context.Context) error {
	mboxes, err := x.a.Mailboxes(ctx)
	if err != nil {
		return err
	}
	// INBOX first: it is the Maildir's root.
	slices.SortStableFunc(mboxes, func(a, b store.Mailbox) int {
		switch {
		case a.Name == "INBOX":
			return -1
		case b.Name == "INBOX":
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	if len(mboxes) == 0 || mboxes[0].Name != "INBOX" {
		for _, sub := range []string{"Maildir", "Maildir/cur", "Maildir/new", "Maildir/tmp"} {
			if err := x.dir(sub, x.now); err != nil {
				return err
			}
		}
	}
	for _, mb := range mboxes {
		if err := x.mailbox(ctx, mb); err != nil {
			return err
		}
	}
	return nil
}

func (x *exporter) mailbox(ctx context.Context, mb store.Mailbox) error {
	dir := maildirDir(mb.Name)
	for _, sub := range []string{dir, dir + "/cur", dir + "/new", dir + "/tmp"} {
		if err := x.dir(sub, x.now); err != nil {
			return err
		}
	}
	// Read the list first: no read transaction stays open while content
	// is streamed.
	var msgs []store.Message
	err := x.a.Messages(ctx, mb.ID, nil, store.FetchOptions{}, func(m *store.Message) error {
		msgs = append(msgs, *m)
		return nil
	})
	if err != nil {
		return fmt.Errorf("mailbox %s: %w", mb.Name, err)
	}
	// Keywords become the letters a..z (dovecot-keywords); more than 26
	// keywords in one mailbox cannot be written into file names.
	letters := make(map[string]byte)
	var kwfile strings.Builder
	for _, m := range msgs {
		for _, f := range m.Flags {
			if strings.HasPrefix(f, `\`) || f == "$Forwarded" || letters[f] != 0 || len(letters) >= 26 {
				continue
			}
			letters[f] = byte('a' + len(letters))
			fmt.Fprintf(&kwfile, "%d %s\n", len(letters)-1, f)
		}
	}
	if kwfile.Len() > 0 {
		if err := x.file(dir+"/dovecot-keywords", []byte(kwfile.String()), x.now); err != nil {
			return err
		}
	}
	for _, m := range msgs {
		if err := ctx.Err(); err != nil {
			return err
		}
		var info []byte
		for _, mf := range maildirFlags {
			if slices.Contains(m.Flags, mf.flag) {
				info = append(info, mf.letter)
			}
		}
		var kws []byte
		for _, f := range m.Flags {
			if l := letters[f]; l != 0 {
				kws = append(kws, l)
			}
		}
		slices.Sort(kws)
		name := fmt.Sprintf("%s/cur/%d.K%dV%d.kreide,S=%d:2,%s%s", dir, m.InternalDate.Unix(), m.UID, mb.UIDValidity, m.Size, info, kws)
		if err := x.message(ctx, mb, &m, name); err != nil {
			return err
		}
		x.done(m.Size)
	}
	return nil
}

func (x *exporter) message(ctx context.Context, mb store.Mailbox, m *store.Message, name string) error {
	br, err := x.a.OpenMessage(ctx, mb.ID, m.UID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // expunged meanwhile
	}
	if err != nil {
		return fmt.Errorf("mailbox %s, message %d: %w", mb.Name, m.UID, err)
	}
	defer br.Close()
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: m.Size, Mode: 0o600, ModTime: m.InternalDate, Format: tar.FormatPAX}
	if err := x.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.Copy(x.tw, br); err != nil {
		return fmt.Errorf("mailbox %s, message %d: %w", mb.Name, m.UID, err)
	}
	return nil
}

func (x *exporter) dav(ctx context.Context) error {
	for _, kind := range []store.CollectionKind{store.KindCalendar, store.KindAddressBook} {
		colls, err := x.a.Collections(ctx, kind)
		if err != nil {
			return err
		}
		dir, ext := "calendars", ".ics"
		if kind == store.KindAddressBook {
			dir, ext = "contacts", ".vcf"
		}
		if err := x.dir(dir, x.now); err != nil {
			return err
		}
		for _, c := range colls {
			var objs []*store.Object
			err := x.a.ListObjects(ctx, c.ID, store.ObjectOptions{Data: true}, func(o *store.Object) error {
				objs = append(objs, o)
				return nil
			})
			if err != nil {
				return fmt.Errorf("collection %s: %w", c.Slug, err)
			}
			slices.SortFunc(objs, func(a, b *store.Object) int { return strings.Compare(a.Name, b.Name) })
			var data []byte
			var size int64
			if kind == store.KindCalendar {
				data = mergeCalendars(c, objs)
			} else {
				for _, o := range objs {
					data = append(data, o.Data...)
					if len(o.Data) > 0 && o.Data[len(o.Data)-1] != '\n' {
						data = append(data, "\r\n"...)
					}
				}
			}
			for _, o := range objs {
				size += o.Size
			}
			if err := x.file(dir+"/"+c.Slug+ext, data, x.now); err != nil {
				return err
			}
			x.done(size)
		}
	}
	return nil
}

// walkFiles calls fn for every file (not folder) below p, parents first.
func (x *exporter) walkFiles(ctx context.Context, p string, fn func(string, store.FileInfo) error) error {
	ents, err := x.a.Files().ReadDir(ctx, p)
	if err != nil {
		return fmt.Errorf("files: /%s: %w", p, err)
	}
	for _, fi := range ents {
		child := path.Join(p, fi.Name)
		if fi.Dir {
			if err := x.walkFiles(ctx, child, fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(child, fi); err != nil {
			return err
		}
	}
	return nil
}

func (x *exporter) files(ctx context.Context) error {
	if err := x.dir("files", x.now); err != nil {
		return err
	}
	var walk func(p string) error
	walk = func(p string) error {
		ents, err := x.a.Files().ReadDir(ctx, p)
		if err != nil {
			return fmt.Errorf("files: /%s: %w", p, err)
		}
		for _, fi := range ents {
			if err := ctx.Err(); err != nil {
				return err
			}
			child := path.Join(p, fi.Name)
			if fi.Dir {
				if err := x.dir("files/"+child, fi.Modified); err != nil {
					return err
				}
				if err := walk(child); err != nil {
					return err
				}
				continue
			}
			if err := x.fileContent(ctx, child); err != nil {
				return err
			}
		}
		return nil
	}
	return walk("")
}

func (x *exporter) fileContent(ctx context.Context, p string) error {
	br, fi, err := x.a.Files().Open(ctx, p)
	if errors.Is(err, store.ErrNotFound) {
		return nil // removed meanwhile
	}
	if err != nil {
		return fmt.Errorf("files: /%s: %w", p, err)
	}
	defer br.Close()
	if err := x.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "files/" + p, Size: fi.Size, Mode: 0o600, ModTime: fi.Modified, Format: tar.FormatPAX}); err != nil {
		return err
	}
	if _, err := io.Copy(x.tw, br); err != nil {
		return fmt.Errorf("files: /%s: %w", p, err)
	}
	x.done(fi.Size)
	return nil
}
