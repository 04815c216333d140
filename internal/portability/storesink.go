package portability

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"slices"
	"strings"

	"kreide/store"
)

// StoreSink stores items in an unlocked account. serve uses it for imports
// through the control socket, the CLI when serve does not run.
type StoreSink struct {
	a      *store.Account
	mboxes map[string]store.MailboxID
	colls  map[string]store.Collection
	dirs   map[string]bool
}

var _ Sink = (*StoreSink)(nil)

// NewStoreSink returns a sink into a.
func NewStoreSink(a *store.Account) *StoreSink {
	return &StoreSink{a: a, mboxes: make(map[string]store.MailboxID), colls: make(map[string]store.Collection), dirs: make(map[string]bool)}
}

// Put stores one item; its outcome goes to done, and only a fatal error is
// returned.
func (s *StoreSink) Put(ctx context.Context, it *Item, r io.Reader, done func(error)) error {
	err := s.put(ctx, it, r)
	done(err)
	if Fatal(err) {
		return err
	}
	return nil
}

// Close does nothing: every Put is complete when it returns.
func (s *StoreSink) Close() error { return nil }

func (s *StoreSink) put(ctx context.Context, it *Item, r io.Reader) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch it.Kind {
	case KindMessage:
		return s.putMessage(ctx, it, r)
	case KindEvent, KindContact:
		return s.putObject(ctx, it, r)
	case KindFile:
		return s.putFile(ctx, it, r)
	case KindFolder:
		return s.mkdirAll(ctx, it.Path)
	}
	return fmt.Errorf("unknown kind of item %q", it.Kind)
}

// Message import.

func (s *StoreSink) putMessage(ctx context.Context, it *Item, r io.Reader) error {
	br := bufio.NewReaderSize(newCRLFReader(r), 64<<10)
	first, err := br.Peek(1)
	if len(first) == 0 {
		if err != nil && err != io.EOF {
			return err
		}
		return errors.New("empty message")
	}
	if !looksLikeHeader(br) {
		return errors.New("not a mail message (it does not start with a header field)")
	}
	mb, err := s.mailbox(ctx, it.Mailbox)
	if err != nil {
		return err
	}
	_, err = s.a.Append(ctx, mb, br, it.Flags, it.Date)
	if err != nil && !Fatal(err) && !errors.Is(err, store.ErrInvalid) {
		return fmt.Errorf("not a readable mail message: %w", err)
	}
	return err
}

// looksLikeHeader checks that a message starts with "Name:" (RFC 5322
// section 2.2: printable characters but ':', then ':').
func looksLikeHeader(br *bufio.Reader) bool {
	b, _ := br.Peek(1000)
	for i, c := range b {
		switch {
		case c == ':':
			return i > 0
		case c < 33 || c > 126:
			return false
		}
	}
	return false
}

// Mailbox names in other systems that mean the special mailboxes: a
// top-level folder of one of these names goes into the account's mailbox
// of that role (unless a mailbox of exactly that name exists).
var roleAliases = map[string]string{
	"sent": store.RoleSent, "sent items": store.RoleSent, "sent messages": store.RoleSent, "sent mail": store.RoleSent,
	"gesendet": store.RoleSent, "gesendete objekte": store.RoleSent, "gesendete elemente": store.RoleSent,
	"drafts": store.RoleDrafts, "draft": store.RoleDrafts, "entwürfe": store.RoleDrafts,
	"trash": store.RoleTrash, "deleted items": store.RoleTrash, "deleted messages": store.RoleTrash, "bin": store.RoleTrash,
	"papierkorb": store.RoleTrash, "gelöschte elemente": store.RoleTrash, "gelöschte objekte": store.RoleTrash,
	"junk": store.RoleJunk, "spam": store.RoleJunk, "junk e-mail": store.RoleJunk, "junk-e-mail": store.RoleJunk,
	"archive": store.RoleArchive, "archiv": store.RoleArchive, "archives": store.RoleArchive,
}

// mailbox finds or creates the mailbox name, and its parents as IMAP
// CREATE does.
func (s *StoreSink) mailbox(ctx context.Context, name string) (store.MailboxID, error) {
	name = cleanMailbox(name)
	if name == "" {
		name = "INBOX"
	}
	if id, ok := s.mboxes[name]; ok {
		return id, nil
	}
	mb, err := s.a.MailboxByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) && !strings.Contains(name, "/") {
		if role := roleAliases[strings.ToLower(name)]; role != "" {
			mb, err = s.a.MailboxByRole(ctx, role)
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		for i, c := range name {
			if c != '/' {
				continue
			}
			if _, err := s.a.MailboxByName(ctx, name[:i]); errors.Is(err, store.ErrNotFound) {
				if _, err := s.a.CreateMailbox(ctx, name[:i], ""); err != nil && !errors.Is(err, store.ErrExists) {
					return 0, fmt.Errorf("creating mailbox %s: %w", name[:i], err)
				}
			}
		}
		mb, err = s.a.CreateMailbox(ctx, name, "")
		if errors.Is(err, store.ErrExists) {
			mb, err = s.a.MailboxByName(ctx, name)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("mailbox %s: %w", name, err)
	}
	s.mboxes[name] = mb.ID
	return mb.ID, nil
}

// Calendar objects and contacts.

func (s *StoreSink) putObject(ctx context.Context, it *Item, r io.Reader) error {
	data, err := io.ReadAll(io.LimitReader(newCRLFReader(r), maxObject+1))
	if err != nil {
		return err
	}
	if len(data) > maxObject {
		return fmt.Errorf("larger than %d MiB", maxObject>>20)
	}
	kind, ext := store.KindCalendar, ".ics"
	var sum store.ObjectSummary
	if it.Kind == KindContact {
		kind, ext = store.KindAddressBook, ".vcf"
		uid, err := checkVCard(data)
		if err != nil {
			return fmt.Errorf("not a valid vCard: %w", err)
		}
		sum.UID = uid
	} else if sum, err = checkCalendar(data); err != nil {
		return fmt.Errorf("not a valid calendar object: %w", err)
	}
	coll, err := s.collection(ctx, kind, it.Collection, it.CollectionName, sum.Component)
	if err != nil {
		return err
	}
	name := objectName(sum.UID, ext, data)
	_, _, err = s.a.PutObject(ctx, coll.ID, name, data, store.PutObjectOptions{Summary: sum})
	var conflict *store.UIDConflictError
	if errors.As(err, &conflict) {
		return fmt.Errorf("%s already has an object with UID %s (%s)", collLabel(coll), sum.UID, conflict.Name)
	}
	return err
}

func collLabel(c store.Collection) string {
	if c.DisplayName != "" {
		return fmt.Sprintf("%q", c.DisplayName)
	}
	return c.Slug
}

// collection finds the collection for an object: the one with slug, or
// the account's default one that takes comp; it is created if missing.
func (s *StoreSink) collection(ctx context.Context, kind store.CollectionKind, slug, name, comp string) (store.Collection, error) {
	key := fmt.Sprintf("%d/%s/%s", kind, slug, comp)
	if c, ok := s.colls[key]; ok {
		return c, nil
	}
	c, err := s.findCollection(ctx, kind, slug, name, comp)
	if err != nil {
		return c, err
	}
	s.colls[key] = c
	return c, nil
}

func (s *StoreSink) findCollection(ctx context.Context, kind store.CollectionKind, slug, name, comp string) (store.Collection, error) {
	if slug != "" {
		c, err := s.a.CollectionBySlug(ctx, kind, slug)
		if errors.Is(err, store.ErrNotFound) {
			if name == "" {
				name = slug
			}
			nc := store.Collection{Kind: kind, Slug: slug, DisplayName: name}
			if kind == store.KindCalendar {
				nc.Components = []string{store.CompEvent, store.CompTodo, store.CompJournal}
			}
			c, err = s.a.CreateCollection(ctx, nc)
			if errors.Is(err, store.ErrExists) {
				c, err = s.a.CollectionBySlug(ctx, kind, slug)
			}
		}
		if err != nil {
			return c, fmt.Errorf("collection %s: %w", slug, err)
		}
		if kind == store.KindCalendar && !c.Accepts(comp) {
			return c, fmt.Errorf("the calendar %s does not take %s", collLabel(c), comp)
		}
		return c, nil
	}
	colls, err := s.a.Collections(ctx, kind)
	if err != nil {
		return store.Collection{}, err
	}
	prefer := map[string]string{store.CompEvent: "calendar", store.CompTodo: "tasks", store.CompJournal: "journal", "": "contacts"}[comp]
	slices.SortStableFunc(colls, func(a, b store.Collection) int {
		switch {
		case a.Slug == prefer && b.Slug != prefer:
			return -1
		case b.Slug == prefer && a.Slug != prefer:
			return 1
		}
		return 0
	})
	for _, c := range colls {
		if kind == store.KindAddressBook || c.Accepts(comp) {
			return c, nil
		}
	}
	// No calendar takes this component (journal entries, by default).
	nc := store.Collection{Kind: kind, Slug: prefer, DisplayName: map[string]string{
		"calendar": "Kalender", "tasks": "Aufgaben", "journal": "Journal", "contacts": "Kontakte"}[prefer]}
	if kind == store.KindCalendar {
		nc.Components = []string{comp}
	}
	c, err := s.a.CreateCollection(ctx, nc)
	if err != nil {
		return c, fmt.Errorf("creating the collection %s: %w", prefer, err)
	}
	return c, nil
}

// Files.

func (s *StoreSink) mkdirAll(ctx context.Context, p string) error {
	var cur string
	for _, name := range strings.Split(p, "/") {
		if name == "" {
			continue
		}
		cur = path.Join(cur, name)
		if s.dirs[cur] {
			continue
		}
		if _, err := s.a.Files().Mkdir(ctx, cur, nil); err != nil && !errors.Is(err, store.ErrExists) {
			return fmt.Errorf("creating the folder /%s: %w", cur, err)
		}
		fi, err := s.a.Files().Stat(ctx, cur)
		if err != nil {
			return err
		}
		if !fi.Dir {
			return fmt.Errorf("/%s is a file, not a folder", cur)
		}
		s.dirs[cur] = true
	}
	return nil
}

func (s *StoreSink) putFile(ctx context.Context, it *Item, r io.Reader) error {
	if err := s.mkdirAll(ctx, path.Dir(it.Path)); err != nil {
		return err
	}
	files := s.a.Files()
	if fi, err := files.Stat(ctx, it.Path); err == nil {
		if !fi.Dir && fi.Size == it.Size {
			return nil // imported before
		}
		return fmt.Errorf("/%s is already there and differs: not overwritten", it.Path)
	}
	w, err := files.Create(ctx, it.Path, store.FileCreateOptions{
		ContentType: mime.TypeByExtension(path.Ext(it.Path)), ExpectedSize: it.Size, IfNoneMatch: true})
	if err != nil {
		return fmt.Errorf("/%s: %w", it.Path, err)
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Abort()
		return err
	}
	if _, _, err := w.Commit(ctx); err != nil {
		return fmt.Errorf("/%s: %w", it.Path, err)
	}
	return nil
}
