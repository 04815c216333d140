package imap

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"kreide/store"
)

// delim is the hierarchy delimiter. The store is flat; "a/b" is a mailbox
// named "a/b" whose parent is "a".
const delim = '/'

// maxNameLen is the store's limit, checked first so that CREATE makes no
// parents for a name that will be refused.
const maxNameLen = 1000

var roleAttrs = map[string]imap.MailboxAttr{
	store.RoleDrafts:  imap.MailboxAttrDrafts,
	store.RoleSent:    imap.MailboxAttrSent,
	store.RoleTrash:   imap.MailboxAttrTrash,
	store.RoleJunk:    imap.MailboxAttrJunk,
	store.RoleArchive: imap.MailboxAttrArchive,
	store.RoleAll:     imap.MailboxAttrAll,
	store.RoleFlagged: imap.MailboxAttrFlagged,
}

// mailbox looks a mailbox up by name; notFound is the error to give when
// it does not exist (NONEXISTENT, or TRYCREATE for COPY, MOVE, APPEND).
func (s *session) mailbox(name string, notFound error) (store.Mailbox, error) {
	if s.acct == nil {
		return store.Mailbox{}, bad("Not logged in")
	}
	mb, err := s.acct.MailboxByName(s.ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return mb, notFound
	}
	return mb, s.mapErr(err)
}

// checkName refuses names the hierarchy cannot hold: empty levels,
// wildcards (they could never be LISTed exactly) and control characters.
func checkName(name string) error {
	if name == "" {
		return no(imap.ResponseCodeCannot, "Empty mailbox name")
	}
	if len(name) > maxNameLen || !utf8.ValidString(name) {
		return no(imap.ResponseCodeCannot, "Mailbox name too long or not UTF-8")
	}
	for _, level := range strings.Split(name, string(delim)) {
		if level == "" {
			return no(imap.ResponseCodeCannot, "Mailbox name has an empty level")
		}
	}
	if strings.ContainsAny(name, "*%") || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return no(imap.ResponseCodeCannot, "Mailbox name contains wildcards or control characters")
	}
	return nil
}

// parents returns the superior names of name: "a", "a/b" for "a/b/c".
func parents(name string) []string {
	var out []string
	for i, r := range name {
		if r == delim {
			out = append(out, name[:i])
		}
	}
	return out
}

// Create serves CREATE, with CREATE-SPECIAL-USE (RFC 6154). Missing
// superiors are created too (RFC 3501 6.3.3).
func (s *session) Create(name string, opts *imap.CreateOptions) (err error) {
	defer s.guard("CREATE", time.Now(), &err)
	name = strings.TrimSuffix(name, string(delim))
	if err := checkName(name); err != nil {
		return err
	}
	role := ""
	if opts != nil && len(opts.SpecialUse) > 0 {
		if len(opts.SpecialUse) > 1 {
			return no(codeUseAttr, "Only one special use per mailbox")
		}
		for r, attr := range roleAttrs {
			if strings.EqualFold(string(attr), string(opts.SpecialUse[0])) {
				role = r
			}
		}
		if role == "" {
			return no(codeUseAttr, "Unsupported special use")
		}
		if _, err := s.acct.MailboxByRole(s.ctx, role); err == nil {
			return no(codeUseAttr, "Another mailbox already has this special use")
		}
	}
	if _, err := s.acct.MailboxByName(s.ctx, name); err == nil {
		return no(imap.ResponseCodeAlreadyExists, "Mailbox already exists")
	}
	for _, p := range parents(name) {
		if _, err := s.acct.CreateMailbox(s.ctx, p, ""); err != nil && !errors.Is(err, store.ErrExists) {
			return s.mapErr(err)
		}
	}
	_, err = s.acct.CreateMailbox(s.ctx, name, role)
	return s.mapErr(err)
}

// Delete serves DELETE. Children stay (RFC 3501 6.3.4); LIST then shows
// the deleted parent as \Noselect while they exist.
func (s *session) Delete(name string) (err error) {
	defer s.guard("DELETE", time.Now(), &err)
	mb, err := s.mailbox(name, errNoMailbox)
	if err != nil {
		return err
	}
	return s.mapErr(s.acct.DeleteMailbox(s.ctx, mb.ID))
}

// Rename serves RENAME: the mailbox and its children move (RFC 3501
// 6.3.5); renaming INBOX moves its messages to the new mailbox and leaves
// INBOX and its children where they are.
func (s *session) Rename(oldName, newName string, _ *imap.RenameOptions) (err error) {
	defer s.guard("RENAME", time.Now(), &err)
	newName = strings.TrimSuffix(newName, string(delim))
	if err := checkName(newName); err != nil {
		return err
	}
	if strings.EqualFold(newName, "INBOX") {
		return no(imap.ResponseCodeAlreadyExists, "INBOX already exists")
	}
	all, err := s.acct.Mailboxes(s.ctx)
	if err != nil {
		return s.mapErr(err)
	}
	isInbox := strings.EqualFold(oldName, "INBOX")
	if isInbox {
		oldName = "INBOX"
	}
	if newName == oldName || strings.HasPrefix(newName, oldName+string(delim)) {
		return no(imap.ResponseCodeCannot, "Cannot rename a mailbox into itself")
	}
	type move struct {
		id       store.MailboxID
		from, to string
	}
	var moves []move
	exists := map[string]bool{}
	for _, mb := range all {
		exists[mb.Name] = true
		switch {
		case mb.Name == oldName:
			moves = append(moves, move{mb.ID, mb.Name, newName})
		case !isInbox && strings.HasPrefix(mb.Name, oldName+string(delim)):
			moves = append(moves, move{mb.ID, mb.Name, newName + mb.Name[len(oldName):]})
		}
	}
	if len(moves) == 0 {
		return errNoMailbox
	}
	for _, m := range moves {
		if exists[m.to] {
			return no(imap.ResponseCodeAlreadyExists, "Mailbox "+m.to+" already exists")
		}
	}
	for _, p := range parents(newName) {
		if !exists[p] {
			if _, err := s.acct.CreateMailbox(s.ctx, p, ""); err != nil && !errors.Is(err, store.ErrExists) {
				return s.mapErr(err)
			}
		}
	}
	// Not one transaction: the store renames one mailbox at a time.
	for _, m := range moves {
		if err := s.acct.RenameMailbox(s.ctx, m.id, m.to); err != nil {
			return s.mapErr(err)
		}
	}
	return nil
}

// Subscribe serves SUBSCRIBE; only existing mailboxes can be subscribed.
func (s *session) Subscribe(name string) (err error) {
	defer s.guard("SUBSCRIBE", time.Now(), &err)
	return s.setSubscribed(name, true)
}

// Unsubscribe serves UNSUBSCRIBE.
func (s *session) Unsubscribe(name string) (err error) {
	defer s.guard("UNSUBSCRIBE", time.Now(), &err)
	return s.setSubscribed(name, false)
}

func (s *session) setSubscribed(name string, on bool) error {
	mb, err := s.mailbox(name, errNoMailbox)
	if err != nil {
		return err
	}
	return s.mapErr(s.acct.SetSubscribed(s.ctx, mb.ID, on))
}

// listEntry is a name LIST can show: a mailbox, or a parent that only
// exists because it has children.
type listEntry struct {
	name       string
	mb         *store.Mailbox // nil for a parent that does not exist
	children   bool
	subscribed bool // the mailbox itself is subscribed
	subChild   bool // some descendant is subscribed
}

// List serves LIST (with LIST-EXTENDED, LIST-STATUS and SPECIAL-USE
// options: RFC 5258, 5819, 6154) and LSUB.
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, opts *imap.ListOptions) (err error) {
	defer s.guard("LIST", time.Now(), &err)
	if len(patterns) == 0 {
		// LIST "" "": the hierarchy delimiter and root (RFC 9051 6.3.9).
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim})
	}
	all, err := s.acct.Mailboxes(s.ctx)
	if err != nil {
		return s.mapErr(err)
	}
	entries := map[string]*listEntry{}
	get := func(name string) *listEntry {
		e := entries[name]
		if e == nil {
			e = &listEntry{name: name}
			entries[name] = e
		}
		return e
	}
	for i := range all {
		mb := &all[i]
		e := get(mb.Name)
		e.mb, e.subscribed = mb, mb.Subscribed
		for _, p := range parents(mb.Name) {
			pe := get(p)
			pe.children = true
			pe.subChild = pe.subChild || mb.Subscribed
		}
	}
	names := slices.Sorted(maps.Keys(entries))
	// INBOX first, as clients expect.
	if i := slices.Index(names, "INBOX"); i > 0 {
		names = append(append([]string{"INBOX"}, names[:i]...), names[i+1:]...)
	}
	for _, name := range names {
		e := entries[name]
		if !slices.ContainsFunc(patterns, func(p string) bool { return matchName(name, ref, p) }) {
			continue
		}
		data, ok := s.listData(e, opts)
		if !ok {
			continue
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

func (s *session) listData(e *listEntry, opts *imap.ListOptions) (*imap.ListData, bool) {
	data := &imap.ListData{Delim: delim, Mailbox: e.name}
	if opts.SelectSpecialUse && (e.mb == nil || roleAttrs[e.mb.Role] == "") {
		return nil, false
	}
	if opts.SelectSubscribed && !e.subscribed {
		if !opts.SelectRecursiveMatch || !e.subChild {
			return nil, false
		}
	}
	if opts.SelectRecursiveMatch && e.subChild {
		data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
	}
	if e.mb == nil {
		if opts.SelectSubscribed || opts.SelectSpecialUse {
			data.Attrs = append(data.Attrs, imap.MailboxAttrNonExistent)
		} else {
			data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
		}
	}
	if e.children {
		data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
	} else {
		data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
	}
	if e.subscribed && (opts.ReturnSubscribed || opts.SelectSubscribed) {
		data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
	}
	if e.mb != nil {
		if attr := roleAttrs[e.mb.Role]; attr != "" {
			data.Attrs = append(data.Attrs, attr)
		}
		if opts.ReturnStatus != nil {
			data.Status = s.statusData(e.mb, opts.ReturnStatus)
		}
	}
	return data, true
}

// matchName is imapserver.MatchList with INBOX matched case-insensitively
// (RFC 9051 5.1).
func matchName(name, ref, pattern string) bool {
	if imapserver.MatchList(name, delim, ref, pattern) {
		return true
	}
	if name != "INBOX" && !strings.HasPrefix(name, "INBOX/") {
		return false
	}
	canon := func(s string) string {
		if len(s) >= 5 && strings.EqualFold(s[:5], "INBOX") {
			return "INBOX" + s[5:]
		}
		return s
	}
	return imapserver.MatchList(name, delim, canon(ref), canon(pattern))
}

// Status serves STATUS (with STATUS=SIZE, RFC 8438, and DELETED, RFC 9051).
func (s *session) Status(name string, opts *imap.StatusOptions) (data *imap.StatusData, err error) {
	defer s.guard("STATUS", time.Now(), &err)
	mb, err := s.mailbox(name, errNoMailbox)
	if err != nil {
		return nil, err
	}
	return s.statusData(&mb, opts), nil
}

func (s *session) statusData(mb *store.Mailbox, opts *imap.StatusOptions) *imap.StatusData {
	data := &imap.StatusData{
		Mailbox:       mb.Name,
		UIDNext:       imap.UID(mb.UIDNext),
		UIDValidity:   mb.UIDValidity,
		HighestModSeq: mb.HighestModSeq,
	}
	num, unseen, size, zero := mb.Messages, mb.Unseen, mb.Size, uint32(0)
	data.NumMessages, data.NumUnseen, data.Size, data.NumRecent = &num, &unseen, &size, &zero
	if opts.AppendLimit {
		limit := s.srv.appendLimit()
		data.AppendLimit = &limit
	}
	if opts.NumDeleted || opts.DeletedStorage {
		var n uint32
		var bytes int64
		s.acct.Messages(s.ctx, mb.ID, nil, store.FetchOptions{}, func(m *store.Message) error {
			if m.Has(store.FlagDeleted) {
				n++
				bytes += m.Size
			}
			return nil
		})
		data.NumDeleted, data.DeletedStorage = &n, &bytes
	}
	return data
}
