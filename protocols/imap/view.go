package imap

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"kreide/store"
)

// view is a session's picture of its selected mailbox: the UIDs the client
// knows, in sequence-number order (RFC 9051 2.3.1.2), and what changed in
// the store since but has not been told yet.
type view struct {
	id          store.MailboxID
	readOnly    bool
	uidValidity uint32
	uids        []uint32 // ascending; sequence number n is uids[n-1]
	modseq      uint64   // change log position read so far

	pendExp   map[uint32]struct{} // expunged in the store, EXPUNGE not yet sent
	pendAdd   map[uint32]struct{} // added in the store, EXISTS not yet sent
	pendFlags map[uint32]struct{} // flags changed by someone else
	own       map[uint64]struct{} // modseqs of this session's flag changes
}

// systemFlags are the FLAGS of every mailbox; PERMANENTFLAGS adds \*.
var systemFlags = []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft}

// Select serves SELECT and EXAMINE.
func (s *session) Select(name string, opts *imap.SelectOptions) (data *imap.SelectData, err error) {
	defer s.guard("SELECT", time.Now(), &err)
	s.sel, s.searchRes = nil, nil
	mb, err := s.mailbox(name, errNoMailbox)
	if err != nil {
		return nil, err
	}
	// The store has no atomic "UIDs and change counter" read: read the
	// counter first, so changes that race with the listing are read again
	// from the log (and ignored when the listing already has them).
	modseq, err := s.acct.ModSeq(s.ctx)
	if err != nil {
		return nil, s.mapErr(err)
	}
	uids, err := s.acct.UIDs(s.ctx, mb.ID)
	if err != nil {
		return nil, s.mapErr(err)
	}
	v := &view{
		id: mb.ID, readOnly: opts.ReadOnly, uidValidity: mb.UIDValidity, uids: uids, modseq: modseq,
		pendExp: map[uint32]struct{}{}, pendAdd: map[uint32]struct{}{}, pendFlags: map[uint32]struct{}{},
		own: map[uint64]struct{}{},
	}
	// mb was read before the listing, so every message missing from the
	// listing gets a UID at or above this UIDNEXT (clients rely on that to
	// find new mail), and the listing may only run ahead of it.
	uidNext := mb.UIDNext
	if n := len(uids); n > 0 && uids[n-1] >= uidNext {
		uidNext = uids[n-1] + 1
	}
	data = &imap.SelectData{
		Flags:       systemFlags,
		NumMessages: uint32(len(uids)),
		UIDNext:     imap.UID(uidNext),
		UIDValidity: mb.UIDValidity,
	}
	if !opts.ReadOnly {
		data.PermanentFlags = append(slices.Clone(systemFlags), imap.FlagWildcard)
	}
	if mb.Unseen > 0 {
		data.FirstUnseenSeqNum = s.firstUnseen(v)
	}
	if s.conn.EnabledCaps().Has(imap.CapIMAP4rev2) {
		// RFC 9051 6.3.2: SELECT returns the mailbox's LIST response.
		data.List = &imap.ListData{Delim: delim, Mailbox: mb.Name}
		if attr := roleAttrs[mb.Role]; attr != "" {
			data.List.Attrs = []imap.MailboxAttr{attr}
		}
	}
	s.sel = v
	return data, nil
}

var errStop = errors.New("stop")

// firstUnseen returns the sequence number of the first message without
// \Seen, for IMAP4rev1's OK [UNSEEN n] (0 if none or on error).
func (s *session) firstUnseen(v *view) uint32 {
	var found uint32
	err := s.acct.Messages(s.ctx, v.id, v.uids, store.FetchOptions{}, func(m *store.Message) error {
		if !m.Has(store.FlagSeen) {
			found = m.UID
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return 0
	}
	if seq, ok := v.seqOf(found); ok {
		return seq
	}
	return 0
}

// Unselect serves UNSELECT, and CLOSE after its implicit expunge.
func (s *session) Unselect() error {
	s.sel, s.searchRes = nil, nil
	return nil
}

// seqOf returns the sequence number of uid.
func (v *view) seqOf(uid uint32) (uint32, bool) {
	i, ok := slices.BinarySearch(v.uids, uid)
	return uint32(i + 1), ok
}

func (v *view) maxUID() uint32 {
	if len(v.uids) == 0 {
		return 0
	}
	return v.uids[len(v.uids)-1]
}

// msgRef is one message of a command's set, as the client numbers it.
type msgRef struct{ seq, uid uint32 }

// resolve turns a sequence set, UID set or "$" into the messages it names,
// in ascending order. A sequence number beyond the view is a client error
// (RFC 9051 7.1); UIDs that do not exist are ignored.
func (s *session) resolve(set imap.NumSet) ([]msgRef, error) {
	v := s.sel
	var refs []msgRef
	switch set := set.(type) {
	case imap.SeqSet:
		n := uint32(len(v.uids))
		for _, r := range set {
			a, b := r.Start, r.Stop
			if a == 0 {
				a = n
			}
			if b == 0 {
				b = n
			}
			if a > b {
				a, b = b, a
			}
			if a == 0 {
				if n == 0 && (r.Start == 0 || r.Stop == 0) {
					continue // "*" or "n:*" in an empty mailbox: nothing
				}
				return nil, bad("Invalid sequence number 0")
			}
			if b > n {
				return nil, bad("Sequence number out of range")
			}
			for seq := a; seq <= b; seq++ {
				refs = append(refs, msgRef{seq, v.uids[seq-1]})
			}
		}
	case imap.UIDSet:
		if imap.IsSearchRes(set) {
			for _, uid := range s.searchRes {
				if seq, ok := v.seqOf(uid); ok {
					refs = append(refs, msgRef{seq, uid})
				}
			}
			return refs, nil
		}
		max := v.maxUID()
		for _, r := range set {
			a, b := uint32(r.Start), uint32(r.Stop)
			if a == 0 {
				a = max
			}
			if b == 0 {
				b = max
			}
			if a > b {
				a, b = b, a
			}
			i, _ := slices.BinarySearch(v.uids, a)
			for ; i < len(v.uids) && v.uids[i] <= b; i++ {
				refs = append(refs, msgRef{uint32(i + 1), v.uids[i]})
			}
		}
	default:
		return nil, bad("Invalid message set")
	}
	if len(refs) > 1 {
		slices.SortFunc(refs, func(x, y msgRef) int { return int(x.seq) - int(y.seq) })
		refs = slices.CompactFunc(refs, func(x, y msgRef) bool { return x.seq == y.seq })
	}
	return refs, nil
}

func refUIDs(refs []msgRef) []uint32 {
	out := make([]uint32, len(refs))
	for i, r := range refs {
		out[i] = r.uid
	}
	return out
}

// sync reads the account's change log since the last read and records what
// concerns the selected mailbox.
func (v *view) sync(ctx context.Context, a *store.Account) error {
	changes, cur, err := a.Changes(ctx, v.modseq)
	if err != nil {
		return err
	}
	v.modseq = cur
	for _, c := range changes {
		if c.Mailbox != v.id {
			continue
		}
		switch c.Kind {
		case store.ChangeMessageAdded:
			if _, known := v.seqOf(c.UID); !known && c.UID > v.maxUID() {
				v.pendAdd[c.UID] = struct{}{}
			}
		case store.ChangeMessageRemoved:
			if _, ok := v.pendAdd[c.UID]; ok {
				delete(v.pendAdd, c.UID)
			} else if _, known := v.seqOf(c.UID); known {
				v.pendExp[c.UID] = struct{}{}
			}
			delete(v.pendFlags, c.UID)
		case store.ChangeMessageFlags:
			if _, mine := v.own[c.ModSeq]; mine {
				continue
			}
			if _, known := v.seqOf(c.UID); known {
				v.pendFlags[c.UID] = struct{}{}
			}
		case store.ChangeMailboxDeleted:
			// Someone deleted the selected mailbox: every message is gone.
			for _, uid := range v.uids {
				v.pendExp[uid] = struct{}{}
			}
			clear(v.pendAdd)
			clear(v.pendFlags)
		}
	}
	for m := range v.own {
		if m <= cur {
			delete(v.own, m)
		}
	}
	return nil
}

// noteOwn remembers the modseq of a flag change this session made, so that
// reading it back from the log does not announce it again. One SetFlags
// call uses one new modseq, the largest among its results.
func (v *view) noteOwn(msgs []store.Message) {
	var m uint64
	for _, msg := range msgs {
		m = max(m, msg.ModSeq)
	}
	if m > v.modseq {
		v.own[m] = struct{}{}
	}
}

// expungeWriter is what imapserver's UpdateWriter, ExpungeWriter and
// MoveWriter have in common.
type expungeWriter interface {
	WriteExpunge(seqNum uint32) error
}

// flushExpunges sends EXPUNGE for every pending expunge, ascending, each
// number counted after the previous ones were removed (RFC 9051 7.5.1).
func (v *view) flushExpunges(w expungeWriter) error {
	if len(v.pendExp) == 0 {
		return nil
	}
	out := v.uids[:0]
	removed := 0
	var err error
	for i, uid := range v.uids {
		if _, gone := v.pendExp[uid]; gone {
			if err == nil {
				err = w.WriteExpunge(uint32(i - removed + 1))
			}
			removed++
			delete(v.pendFlags, uid)
			continue
		}
		out = append(out, uid)
	}
	clear(v.uids[len(out):])
	v.uids = out
	clear(v.pendExp)
	return err
}

// flush sends what others changed: EXPUNGE (when allowed), EXISTS and
// FETCH FLAGS.
func (v *view) flush(s *session, w *imapserver.UpdateWriter, allowExpunge bool) error {
	if allowExpunge {
		if err := v.flushExpunges(w); err != nil {
			return err
		}
	}
	if len(v.pendAdd) > 0 {
		added := slices.Sorted(maps.Keys(v.pendAdd))
		clear(v.pendAdd)
		for _, uid := range added {
			if uid > v.maxUID() {
				v.uids = append(v.uids, uid)
			}
		}
		if err := w.WriteNumMessages(uint32(len(v.uids))); err != nil {
			return err
		}
	}
	if len(v.pendFlags) == 0 {
		return nil
	}
	var uids []uint32
	for uid := range v.pendFlags {
		if _, gone := v.pendExp[uid]; !gone {
			uids = append(uids, uid)
		}
	}
	clear(v.pendFlags)
	slices.Sort(uids)
	var msgs []store.Message
	err := s.acct.Messages(s.ctx, v.id, uids, store.FetchOptions{}, func(m *store.Message) error {
		msgs = append(msgs, store.Message{UID: m.UID, Flags: m.Flags})
		return nil
	})
	if err != nil {
		s.srv.log.Warn("imap: reading flags", "user", s.login(), "err", err)
		return nil
	}
	for _, m := range msgs {
		if seq, ok := v.seqOf(m.UID); ok {
			if err := w.WriteMessageFlags(seq, imap.UID(m.UID), imapFlags(m.Flags)); err != nil {
				return err
			}
		}
	}
	return nil
}

// imapFlags converts store flags for the wire, dropping any that the wire
// cannot carry.
func imapFlags(flags []string) []imap.Flag {
	out := make([]imap.Flag, 0, len(flags))
	for _, f := range flags {
		if validFlag(f) {
			out = append(out, imap.Flag(f))
		}
	}
	return out
}

// storeFlags converts flags from the client; \Recent is the server's to set
// (and kreide never sets it).
func storeFlags(flags []imap.Flag) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		if strings.EqualFold(string(f), `\Recent`) || !validFlag(string(f)) {
			continue
		}
		out = append(out, string(f))
	}
	return out
}

// validFlag is RFC 9051's flag-keyword / \flag-extension: atom characters.
func validFlag(f string) bool {
	if f == "" || len(f) > 200 {
		return false
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c == '\\' && i == 0 {
			continue
		}
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}
