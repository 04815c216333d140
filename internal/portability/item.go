package portability

import (
	"context"
	"errors"
	"io"
	"time"

	"kreide/store"
)

// Kind is what an Item is.
type Kind string

// Kinds of items.
const (
	KindMessage Kind = "message"  // a mail message into Item.Mailbox
	KindEvent   Kind = "calendar" // a calendar object (event, task, journal entry)
	KindContact Kind = "contact"  // a vCard
	KindFile    Kind = "file"     // a file at Item.Path in the file tree
	KindFolder  Kind = "folder"   // a folder at Item.Path in the file tree
)

// Item is one thing to import: what and where to. Its content comes as a
// reader alongside. It is JSON so that it can travel over the control
// socket.
type Item struct {
	Kind Kind `json:"kind"`
	// Source says where the item came from, for reports: a path relative to
	// what was imported, with a message number or UID where a file holds
	// many items.
	Source string `json:"source"`
	// Size is the number of source bytes (for progress; for files also the
	// expected size).
	Size int64 `json:"size"`

	// Messages: mailbox name with "/" as hierarchy delimiter, IMAP flags
	// and keywords, internal date (zero: now).
	Mailbox string    `json:"mailbox,omitempty"`
	Flags   []string  `json:"flags,omitempty"`
	Date    time.Time `json:"date,omitzero"`

	// Calendar objects and contacts: the collection's slug ("" for the
	// account's default calendar, task list or address book) and, for a
	// new collection, its display name.
	Collection     string `json:"collection,omitempty"`
	CollectionName string `json:"collection_name,omitempty"`

	// Files and folders: the path in the account's file tree.
	Path string `json:"path,omitempty"`
}

// Sink receives the items of an import in order.
type Sink interface {
	// Put stores it with the content read from r. It may return before the
	// item is stored (a remote sink); then it must have read r to the end.
	// done is called exactly once with the item's outcome, in item order.
	// A non-nil return is fatal: the import stops.
	Put(ctx context.Context, it *Item, r io.Reader, done func(error)) error
	// Close waits for every outstanding outcome and ends the import.
	Close() error
}

// Progress is where an import or export stands.
type Progress struct {
	Items     int64 `json:"items"`      // items in all
	Bytes     int64 `json:"bytes"`      // bytes in all
	Done      int64 `json:"done"`       // items finished (stored or skipped)
	DoneBytes int64 `json:"done_bytes"` // bytes of the finished items
	Failed    int64 `json:"failed"`     // items skipped because of an error
}

// Result is the outcome of one item.
type Result struct {
	Item *Item
	Err  error // nil: stored
}

// Fatal reports whether err must end an import rather than skip one item:
// the account is over quota or closed, or the work was interrupted.
func Fatal(err error) bool {
	return errors.Is(err, store.ErrOverQuota) || errors.Is(err, store.ErrClosed) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, errFatal)
}

// errFatal marks other errors that end an import (a broken connection).
var errFatal = errors.New("import stopped")

// FatalError wraps err so that Fatal reports true for it.
func FatalError(err error) error {
	if err == nil || Fatal(err) {
		return err
	}
	return &fatalError{err}
}

type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() []error {
	return []error{e.err, errFatal}
}
