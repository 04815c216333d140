package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"kreide/crypto"
)

// The outbound queue: messages accepted for remote recipients, kept until
// they are delivered, bounced or dropped.
//
//	system.db bucket "queue": id -> QueueMessage (JSON) sealed under the
//	                          server's queue key; nothing about a message is
//	                          in clear but its random id
//	<data dir>/queue/<id>:     the message, a crypto STREAM under its own
//	                          content key (kept in the sealed record)
//	<data dir>/queue/tmp-*:    spools being written; removed by Sweep
//
// Write order as for blobs: the spool file is fsynced, renamed to its id and
// the directory fsynced before the record that names it commits. Remove
// deletes the record first, then the file.
var bktQueue = []byte("queue")

const queueDir = "queue"

// spoolMemMax is how much encrypted content a spool keeps in memory before it
// moves to a file: one stream chunk, like the store's blob writer.
const spoolMemMax = crypto.ChunkSize + 16

// RcptState is where delivery to one queued recipient stands.
type RcptState string

// States of a queued recipient.
const (
	RcptPending RcptState = "pending"
	RcptSent    RcptState = "sent"
	RcptFailed  RcptState = "failed"
)

// QueueRecipient is one recipient of a queued message.
type QueueRecipient struct {
	Addr  string    `json:"addr"`
	State RcptState `json:"state"`
	// LastError is the last reply or error text (for DSNs and `queue list`).
	LastError string `json:"err,omitempty"`
	// RemoteMTA is the host that gave LastError.
	RemoteMTA string `json:"mta,omitempty"`
	// Code is the SMTP reply code of LastError (0: no reply, e.g. DNS or network).
	Code int `json:"code,omitempty"`
}

// QueueMessage is a queued message's envelope and delivery state.
type QueueMessage struct {
	ID string `json:"id"`
	// From is the envelope sender; empty for bounces (null reverse-path).
	From string `json:"from"`
	// Account is the id of the local account that sent it, if any: bounces go
	// to its INBOX.
	Account    string           `json:"account,omitempty"`
	Recipients []QueueRecipient `json:"rcpts"`
	// Prefix is sent before the spooled content (the DKIM-Signature fields,
	// computed once the whole message was spooled).
	Prefix []byte `json:"prefix,omitempty"`
	// Size is the spooled content's length in bytes (without Prefix).
	Size int64 `json:"size"`
	// UTF8 marks a message that needs SMTPUTF8.
	UTF8        bool      `json:"utf8,omitempty"`
	Created     time.Time `json:"created"`
	NextAttempt time.Time `json:"next"`
	LastAttempt time.Time `json:"last,omitzero"`
	Attempts    int       `json:"attempts"`

	SpoolKey []byte `json:"key"` // content key of queue/<id>
}

// Pending lists the recipients still to be tried.
func (m *QueueMessage) Pending() []string {
	var out []string
	for _, r := range m.Recipients {
		if r.State == RcptPending {
			out = append(out, r.Addr)
		}
	}
	return out
}

// Queue is the durable outbound queue in the data dir.
type Queue struct{ d *Directory }

// Queue returns the data dir's outbound queue.
func (d *Directory) Queue() *Queue { return &Queue{d} }

func (q *Queue) dir() string { return filepath.Join(q.d.dir, queueDir) }

func (q *Queue) cipher() (*crypto.RecordCipher, error) {
	k, err := q.d.serverKey(serverKeyQueue)
	if err != nil {
		return nil, err
	}
	return crypto.NewRecordCipher(k, "system"), nil
}

func (q *Queue) ensureDir() error {
	if err := os.Mkdir(q.dir(), 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	return syncDir(q.d.dir)
}

// Spool is an encrypted scratch copy of one message while it is received.
// It is written once, then read as often as needed (DKIM verification,
// signing, delivery). Its content key lives only in memory until Add commits
// it to the queue. Small content stays in memory (one chunk); larger content
// goes to a file under queue/ that is either already unlinked (NewScratch) or
// named tmp-* until Add renames it.
type Spool struct {
	q       *Queue
	key     crypto.Key
	scratch bool
	sw      io.WriteCloser
	mem     []byte
	f       *os.File
	path    string // "" once unlinked or moved
	size    int64
	encSize int64
	err     error
	done    bool
	added   bool
}

// NewSpool starts a spool that Add can commit to the queue.
func (q *Queue) NewSpool() *Spool { return q.newSpool(false) }

// NewScratch starts a spool that is never committed: its file, if it needs
// one, is unlinked as soon as it is created, so a crash leaves nothing behind.
func (q *Queue) NewScratch() *Spool { return q.newSpool(true) }

func (q *Queue) newSpool(scratch bool) *Spool {
	s := &Spool{q: q, key: crypto.NewKey(), scratch: scratch}
	s.sw = crypto.NewStreamWriter(spoolSpill{s}, s.key)
	return s
}

type spoolSpill struct{ s *Spool }

func (sp spoolSpill) Write(p []byte) (int, error) {
	s := sp.s
	if s.f == nil && len(s.mem)+len(p) <= spoolMemMax {
		s.mem = append(s.mem, p...)
		return len(p), nil
	}
	if s.f == nil {
		if err := s.createFile(); err != nil {
			return 0, err
		}
		if _, err := s.f.Write(s.mem); err != nil {
			return 0, err
		}
		s.mem = nil
	}
	return s.f.Write(p)
}

func (s *Spool) createFile() error {
	if err := s.q.ensureDir(); err != nil {
		return err
	}
	f, err := os.CreateTemp(s.q.dir(), "tmp-*")
	if err != nil {
		return err
	}
	s.f = f
	if s.scratch {
		return os.Remove(f.Name())
	}
	s.path = f.Name()
	return nil
}

// Write appends plaintext.
func (s *Spool) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.done {
		return 0, fmt.Errorf("%w: spool already finished", ErrInvalid)
	}
	n, err := s.sw.Write(p)
	s.size += int64(n)
	s.err = err
	return n, err
}

// Finish ends writing; after it the spool can be read.
func (s *Spool) Finish() error {
	if s.err != nil {
		return s.err
	}
	if s.done {
		return nil
	}
	s.done = true
	if err := s.sw.Close(); err != nil {
		s.err = err
		return err
	}
	s.encSize = crypto.EncryptedSize(s.size)
	return nil
}

// Size is the number of plaintext bytes written.
func (s *Spool) Size() int64 { return s.size }

// Reader returns a new reader of the whole content from its start. Several
// readers may be used at once.
func (s *Spool) Reader() (io.Reader, error) {
	if !s.done || s.err != nil {
		return nil, fmt.Errorf("%w: spool not finished", ErrInvalid)
	}
	var ra io.ReaderAt = bytes.NewReader(s.mem)
	if s.f != nil {
		ra = s.f
	}
	sr, err := crypto.NewStreamReader(ra, s.encSize, s.key)
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(sr, 0, s.size), nil
}

// Close discards the spool unless Add committed it.
func (s *Spool) Close() error {
	s.mem = nil
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	if s.path != "" && !s.added {
		os.Remove(s.path)
	}
	s.path = ""
	return nil
}

// Add commits a finished spool as a queued message. m.ID, m.Size, m.Created
// and the spool key are filled in; NextAttempt defaults to now. When Add
// returns nil the message is durable.
func (q *Queue) Add(ctx context.Context, m *QueueMessage, s *Spool) error {
	if s.scratch || s.added {
		return fmt.Errorf("%w: spool cannot be queued", ErrInvalid)
	}
	if err := s.Finish(); err != nil {
		return err
	}
	if len(m.Pending()) == 0 {
		return fmt.Errorf("%w: no recipient to queue for", ErrInvalid)
	}
	rc, err := q.cipher()
	if err != nil {
		return err
	}
	if s.f == nil {
		if err := s.createFile(); err != nil {
			return err
		}
		if _, err := s.f.Write(s.mem); err != nil {
			return err
		}
	}
	if err := s.f.Sync(); err != nil {
		return err
	}
	m.ID = newID()
	m.Size = s.size
	m.SpoolKey = append([]byte(nil), s.key[:]...)
	if m.Created.IsZero() {
		m.Created = time.Now().UTC()
	}
	if m.NextAttempt.IsZero() {
		m.NextAttempt = m.Created
	}
	final := filepath.Join(q.dir(), m.ID)
	if err := os.Rename(s.path, final); err != nil {
		return err
	}
	s.path = final
	if err := syncDir(q.dir()); err != nil {
		os.Remove(final)
		return err
	}
	if err := q.put(rc, m); err != nil {
		os.Remove(final)
		return err
	}
	s.added = true
	return nil
}

func (q *Queue) put(rc *crypto.RecordCipher, m *QueueMessage) error {
	plain, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return q.d.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bktQueue)
		if err != nil {
			return err
		}
		return b.Put([]byte(m.ID), rc.Seal(string(bktQueue), []byte(m.ID), plain))
	})
}

// Update stores m's new delivery state. It fails with ErrNotFound when the
// message was removed meanwhile (delivered elsewhere or dropped).
func (q *Queue) Update(ctx context.Context, m *QueueMessage) error {
	rc, err := q.cipher()
	if err != nil {
		return err
	}
	plain, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return q.d.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktQueue)
		if b == nil || b.Get([]byte(m.ID)) == nil {
			return ErrNotFound
		}
		return b.Put([]byte(m.ID), rc.Seal(string(bktQueue), []byte(m.ID), plain))
	})
}

// List returns every queued message, oldest first.
func (q *Queue) List(ctx context.Context) ([]QueueMessage, error) {
	rc, err := q.cipher()
	if err != nil {
		return nil, err
	}
	var out []QueueMessage
	err = q.d.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktQueue)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			m, err := openQueueMessage(rc, k, v)
			if err != nil {
				return err
			}
			out = append(out, m)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, err
}

// Get returns one queued message.
func (q *Queue) Get(ctx context.Context, id string) (QueueMessage, error) {
	var m QueueMessage
	rc, err := q.cipher()
	if err != nil {
		return m, err
	}
	err = q.d.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktQueue)
		if b == nil {
			return ErrNotFound
		}
		v := b.Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		m, err = openQueueMessage(rc, []byte(id), v)
		return err
	})
	return m, err
}

func openQueueMessage(rc *crypto.RecordCipher, k, v []byte) (QueueMessage, error) {
	var m QueueMessage
	plain, err := rc.Open(string(bktQueue), k, v)
	if err != nil {
		return m, fmt.Errorf("queue %s: %w", k, err)
	}
	err = json.Unmarshal(plain, &m)
	return m, err
}

// QueueReader reads a queued message's spooled content.
type QueueReader struct {
	*io.SectionReader
	f *os.File
}

// Close closes the spool file.
func (r *QueueReader) Close() error { return r.f.Close() }

// Open opens the spooled content of m (without m.Prefix).
func (q *Queue) Open(ctx context.Context, m *QueueMessage) (*QueueReader, error) {
	if strings.ContainsAny(m.ID, `/\.`) || m.ID == "" {
		return nil, fmt.Errorf("%w: queue id %q", ErrInvalid, m.ID)
	}
	key, err := crypto.KeyFromBytes(m.SpoolKey)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(q.dir(), m.ID))
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	sr, err := crypto.NewStreamReader(f, st.Size(), key)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &QueueReader{SectionReader: io.NewSectionReader(sr, 0, sr.Size()), f: f}, nil
}

// Remove deletes a queued message: its record first, then its file.
func (q *Queue) Remove(ctx context.Context, id string) error {
	if strings.ContainsAny(id, `/\.`) || id == "" {
		return fmt.Errorf("%w: queue id %q", ErrInvalid, id)
	}
	err := q.d.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktQueue)
		if b == nil || b.Get([]byte(id)) == nil {
			return ErrNotFound
		}
		return b.Delete([]byte(id))
	})
	if err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(q.dir(), id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Sweep removes spool files that no record names (left by a crash between
// writing a spool and committing it, or during Remove). Call it before the
// queue is used, when no spool is being written.
func (q *Queue) Sweep(ctx context.Context) error {
	entries, err := os.ReadDir(q.dir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	known := map[string]bool{}
	err = q.d.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bktQueue); b != nil {
			return b.ForEach(func(k, _ []byte) error {
				known[string(k)] = true
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !known[e.Name()] {
			os.Remove(filepath.Join(q.dir(), e.Name()))
		}
	}
	return nil
}
