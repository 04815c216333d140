package imap

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"kreide/store"
)

// Messages are read from the store in batches, so that no bbolt read
// transaction stays open while a slow client receives data.
const (
	batchMeta   = 512 // flags, sizes, dates
	batchStruct = 64  // with envelope and MIME structure
)

// errGone says a message was expunged while the command ran; it is skipped.
var errGone = errors.New("message expunged meanwhile")

// Fetch serves FETCH and UID FETCH (RFC 9051 6.4.5, RFC 3516 BINARY).
func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, opts *imap.FetchOptions) (err error) {
	// A response that a panic interrupts cannot be finished: the literal
	// length is already on the wire. Drop the connection then, and release
	// imapserver's writer so the connection goroutine can end.
	var open *imapserver.FetchResponseWriter
	defer func() {
		if v := recover(); v != nil {
			ref := errRef()
			s.srv.log.Error("imap: panic", "ref", ref, "cmd", "FETCH", "user", s.login(), "panic", v, "stack", string(debug.Stack()))
			if open != nil {
				s.tc.Close()
				open.Close()
			}
			err = no(imap.ResponseCodeServerBug, "Internal error, reference "+ref)
		}
	}()
	if s.sel == nil {
		return errNoSelected
	}
	refs, err := s.resolve(numSet)
	if err != nil {
		return err
	}
	// The message's own header (Thunderbird's HEADER.FIELDS after SELECT)
	// comes from the store's header cache; other sections need the
	// structure's offsets.
	needStruct := opts.Envelope || opts.BodyStructure != nil ||
		len(opts.BinarySection) > 0 || len(opts.BinarySectionSize) > 0
	needHeader := false
	for _, sec := range opts.BodySection {
		if ownHeader(sec) {
			needHeader = true
		} else {
			needStruct = true
		}
	}
	markSeen := false
	if !s.sel.readOnly {
		for _, sec := range opts.BodySection {
			markSeen = markSeen || !sec.Peek
		}
		for _, sec := range opts.BinarySection {
			markSeen = markSeen || !sec.Peek
		}
	}
	batch := batchMeta
	if needStruct || needHeader {
		batch = batchStruct
	}
	first := min(batch, 64) // a small first batch: the client sees data at once
	for len(refs) > 0 {
		chunk := refs[:min(first, len(refs))]
		refs = refs[len(chunk):]
		first = batch
		msgs, err := s.loadWith(refUIDs(chunk), store.FetchOptions{Structure: needStruct, Header: needHeader})
		if err != nil {
			return err
		}
		var seen map[uint32]bool
		if markSeen {
			if seen, err = s.markSeen(chunk, msgs); err != nil {
				return err
			}
		}
		for _, r := range chunk {
			m := msgs[r.uid]
			if m == nil {
				continue // expunged by another session; RFC 2180 4.1.3
			}
			err := s.fetchOne(w, r, m, opts, seen[r.uid], &open)
			if errors.Is(err, errGone) {
				continue
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// loadWith reads the metadata and what opts asks for of uids, ascending.
func (s *session) loadWith(uids []uint32, opts store.FetchOptions) (map[uint32]*store.Message, error) {
	out := make(map[uint32]*store.Message, len(uids))
	err := s.acct.Messages(s.ctx, s.sel.id, uids, opts, func(m *store.Message) error {
		out[m.UID] = m
		return nil
	})
	if err != nil {
		return nil, s.mapErr(err)
	}
	return out, nil
}

// markSeen sets \Seen on the messages a non-PEEK body fetch reads, and
// reports which changed: their FETCH response then includes FLAGS.
func (s *session) markSeen(refs []msgRef, msgs map[uint32]*store.Message) (map[uint32]bool, error) {
	var uids []uint32
	for _, r := range refs {
		if m := msgs[r.uid]; m != nil && !m.Has(store.FlagSeen) {
			uids = append(uids, r.uid)
		}
	}
	if len(uids) == 0 {
		return nil, nil
	}
	updated, _, err := s.acct.SetFlags(s.ctx, s.sel.id, uids, store.FlagsAdd, []string{store.FlagSeen}, 0)
	if err != nil {
		return nil, s.mapErr(err)
	}
	s.sel.noteOwn(updated)
	changed := make(map[uint32]bool, len(updated))
	for _, u := range updated {
		if m := msgs[u.UID]; m != nil {
			m.Flags = u.Flags
			changed[u.UID] = true
		}
	}
	return changed, nil
}

// fetchOne writes one message's FETCH response. Everything that can fail
// for reasons other than the network (opening the content, filtering
// headers, measuring decoded sizes) happens before the response starts.
func (s *session) fetchOne(w *imapserver.FetchWriter, r msgRef, m *store.Message, opts *imap.FetchOptions, flagsChanged bool, open **imapserver.FetchResponseWriter) error {
	c := &content{s: s, m: m}
	defer c.close()
	bodies := make([]section, len(opts.BodySection))
	for i, item := range opts.BodySection {
		sec, err := c.bodySection(item)
		if err != nil {
			return err
		}
		bodies[i] = sec
	}
	binaries := make([]section, len(opts.BinarySection))
	for i, item := range opts.BinarySection {
		sec, err := c.binarySection(item.Part, item.Partial)
		if err != nil {
			return err
		}
		binaries[i] = sec
	}
	sizes := make([]uint32, len(opts.BinarySectionSize))
	for i, item := range opts.BinarySectionSize {
		sec, err := c.binarySection(item.Part, nil)
		if err != nil {
			return err
		}
		sizes[i] = uint32(min(sec.size, 1<<32-1))
	}

	mw := w.CreateMessage(r.seq)
	*open = mw
	if opts.UID {
		mw.WriteUID(imap.UID(r.uid))
	}
	if opts.Flags || flagsChanged {
		mw.WriteFlags(imapFlags(m.Flags))
	}
	if opts.RFC822Size {
		mw.WriteRFC822Size(m.Size)
	}
	if opts.InternalDate {
		mw.WriteInternalDate(m.InternalDate)
	}
	if opts.Envelope {
		mw.WriteEnvelope(envelope(&m.Structure.Envelope))
	}
	if opts.BodyStructure != nil {
		mw.WriteBodyStructure(bodyStructure(m.Structure.Root))
	}
	fail := func(err error) error {
		*open = nil
		mw.Close()
		return err
	}
	for i, item := range opts.BodySection {
		if err := c.write(mw.WriteBodySection(item, bodies[i].size), bodies[i]); err != nil {
			return fail(err)
		}
	}
	for i, item := range opts.BinarySection {
		if err := c.write(mw.WriteBinarySection(item, binaries[i].size), binaries[i]); err != nil {
			return fail(err)
		}
	}
	for i, item := range opts.BinarySectionSize {
		mw.WriteBinarySectionSize(item, sizes[i])
	}
	*open = nil
	return mw.Close()
}

// content gives a FETCH access to one message's decrypted content, opened
// on first use.
type content struct {
	s  *session
	m  *store.Message
	br *store.BlobReader
}

func (c *content) reader() (*store.BlobReader, error) {
	if c.br != nil {
		return c.br, nil
	}
	br, err := c.s.acct.OpenMessage(c.s.ctx, c.s.sel.id, c.m.UID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errGone
	}
	if err != nil {
		return nil, c.s.mapErr(err)
	}
	c.br = br
	return br, nil
}

func (c *content) close() {
	if c.br != nil {
		c.br.Close()
	}
}

// write streams a prepared section into its literal. A failure half-way
// leaves the literal short: the connection cannot continue, so it is
// closed.
func (c *content) write(wc interface {
	Write([]byte) (int, error)
	Close() error
}, sec section) error {
	err := sec.writeTo(wc)
	if err != nil {
		c.s.srv.log.Warn("imap: fetch aborted", "user", c.s.login(), "uid", c.m.UID, "err", err)
		c.s.tc.Close()
		wc.Close()
		return fmt.Errorf("fetch uid %d: %w", c.m.UID, err)
	}
	return wc.Close()
}
