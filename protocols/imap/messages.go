package imap

import (
	"reflect"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"kreide/store"
)

// Store serves STORE and UID STORE (RFC 9051 6.4.6). Unless .SILENT, the
// new flags come back as FETCH responses (with UID for UID STORE).
func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, _ *imap.StoreOptions) (err error) {
	defer s.guard("STORE", time.Now(), &err)
	if s.sel == nil {
		return errNoSelected
	}
	if s.sel.readOnly {
		return errReadOnly
	}
	refs, err := s.resolve(numSet)
	if err != nil || len(refs) == 0 {
		return err
	}
	op := store.FlagsReplace
	switch flags.Op {
	case imap.StoreFlagsAdd:
		op = store.FlagsAdd
	case imap.StoreFlagsDel:
		op = store.FlagsRemove
	}
	updated, _, err := s.acct.SetFlags(s.ctx, s.sel.id, refUIDs(refs), op, storeFlags(flags.Flags), 0)
	if err != nil {
		return s.mapErr(err)
	}
	s.sel.noteOwn(updated)
	if flags.Silent {
		return nil
	}
	_, isUID := numSet.(imap.UIDSet)
	for _, m := range updated {
		seq, ok := s.sel.seqOf(m.UID)
		if !ok {
			continue
		}
		mw := w.CreateMessage(seq)
		if isUID {
			mw.WriteUID(imap.UID(m.UID))
		}
		mw.WriteFlags(imapFlags(m.Flags))
		if err := mw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// Copy serves COPY and UID COPY with COPYUID (RFC 4315).
func (s *session) Copy(numSet imap.NumSet, dest string) (data *imap.CopyData, err error) {
	defer s.guard("COPY", time.Now(), &err)
	if s.sel == nil {
		return nil, errNoSelected
	}
	refs, err := s.resolve(numSet)
	if err != nil {
		return nil, err
	}
	dst, err := s.mailbox(dest, errTryCreate)
	if err != nil || len(refs) == 0 {
		return nil, err
	}
	pairs, err := s.acct.Copy(s.ctx, s.sel.id, refUIDs(refs), dst.ID)
	if err != nil {
		return nil, s.mapErr(err)
	}
	return copyData(dst.UIDValidity, pairs), nil
}

func copyData(uidValidity uint32, pairs []store.UIDPair) *imap.CopyData {
	if len(pairs) == 0 {
		return nil
	}
	// Both sides ascend (the store assigns destination UIDs in order), so
	// the compressed sets still correspond one to one.
	data := &imap.CopyData{UIDValidity: uidValidity}
	for _, p := range pairs {
		data.SourceUIDs.AddNum(imap.UID(p.Src))
		data.DestUIDs.AddNum(imap.UID(p.Dst))
	}
	return data
}

// Move serves MOVE and UID MOVE (RFC 6851): COPYUID first, then EXPUNGE
// for each moved message.
func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) (err error) {
	defer s.guard("MOVE", time.Now(), &err)
	if s.sel == nil {
		return errNoSelected
	}
	if s.sel.readOnly {
		return errReadOnly
	}
	refs, err := s.resolve(numSet)
	if err != nil {
		return err
	}
	dst, err := s.mailbox(dest, errTryCreate)
	if err != nil || len(refs) == 0 {
		return err
	}
	if dst.ID == s.sel.id {
		return no(imap.ResponseCodeCannot, "Source and destination are the same mailbox")
	}
	pairs, err := s.acct.Move(s.ctx, s.sel.id, refUIDs(refs), dst.ID)
	if err != nil {
		return s.mapErr(err)
	}
	if data := copyData(dst.UIDValidity, pairs); data != nil {
		if err := w.WriteCopyData(data); err != nil {
			return err
		}
	}
	for _, p := range pairs {
		s.sel.pendExp[p.Src] = struct{}{}
	}
	return s.sel.flushExpunges(w)
}

// Expunge serves EXPUNGE, UID EXPUNGE (RFC 4315) and CLOSE's implicit
// expunge: messages with \Deleted go.
func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) (err error) {
	defer s.guard("EXPUNGE", time.Now(), &err)
	if s.sel == nil {
		return errNoSelected
	}
	if s.sel.readOnly {
		if isCloseExpunge(w) {
			return nil // CLOSE of an EXAMINEd mailbox expunges nothing
		}
		return errReadOnly
	}
	candidates := slices.Clone(s.sel.uids) // only the messages this session knows
	if uids != nil {
		refs, err := s.resolve(*uids)
		if err != nil {
			return err
		}
		candidates = refUIDs(refs)
	}
	done, err := s.acct.ExpungeDeleted(s.ctx, s.sel.id, candidates)
	if err != nil {
		return s.mapErr(err)
	}
	for _, uid := range done {
		s.sel.pendExp[uid] = struct{}{}
	}
	return s.sel.flushExpunges(w)
}

// isCloseExpunge tells CLOSE's expunge from EXPUNGE: imapserver passes CLOSE
// an ExpungeWriter without a connection (its responses are not sent).
func isCloseExpunge(w *imapserver.ExpungeWriter) bool {
	v := reflect.ValueOf(w).Elem()
	f := v.FieldByName("conn")
	return f.IsValid() && f.Kind() == reflect.Pointer && f.IsNil()
}

// Append serves APPEND with APPENDUID (RFC 4315). imapserver has already
// refused literals over APPENDLIMIT before reading them.
func (s *session) Append(mailbox string, r imap.LiteralReader, opts *imap.AppendOptions) (data *imap.AppendData, err error) {
	defer s.guard("APPEND", time.Now(), &err)
	mb, err := s.mailbox(mailbox, errTryCreate)
	if err != nil {
		return nil, err
	}
	if r.Size() > s.srv.o.MaxMessageSize {
		return nil, no(imap.ResponseCodeTooBig, "Message too large")
	}
	m, err := s.acct.Append(s.ctx, mb.ID, r, storeFlags(opts.Flags), opts.Time)
	if err != nil {
		return nil, s.mapErr(err)
	}
	return &imap.AppendData{UID: imap.UID(m.UID), UIDValidity: mb.UIDValidity}, nil
}
