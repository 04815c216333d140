package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"kreide/crypto"
)

// MailboxID is a mailbox's opaque, never reused id within an account.
type MailboxID uint32

// Roles of special mailboxes (RFC 6154 special-use), stored in clear so that
// delivery while locked can find INBOX and Junk.
const (
	RoleInbox   = "inbox"
	RoleDrafts  = "drafts"
	RoleSent    = "sent"
	RoleTrash   = "trash"
	RoleJunk    = "junk"
	RoleArchive = "archive"
	RoleAll     = "all"
	RoleFlagged = "flagged"
)

// Mailbox is a mailbox's state. Name is decrypted.
type Mailbox struct {
	ID            MailboxID
	Name          string
	Role          string
	Subscribed    bool
	UIDValidity   uint32
	UIDNext       uint32
	HighestModSeq uint64
	Messages      uint32
	Unseen        uint32
	Size          int64
}

type mailboxRecord struct {
	UIDValidity   uint32 `json:"v"`
	UIDNext       uint32 `json:"n"`
	HighestModSeq uint64 `json:"m"`
	Messages      uint32 `json:"c"`
	Unseen        uint32 `json:"u"`
	Size          int64  `json:"s"`
	Role          string `json:"r,omitempty"`
	Sealed        []byte `json:"x"` // mailboxSecret under the record key
}

type mailboxSecret struct {
	Name       string `json:"n"`
	Subscribed bool   `json:"s"`
}

func mboxKey(id MailboxID) []byte { return binary.BigEndian.AppendUint32(nil, uint32(id)) }

// canonicalName makes INBOX case-insensitive, as RFC 3501 requires.
func canonicalName(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

func validMailboxName(name string) error {
	if name == "" || len(name) > 1000 || !utf8.ValidString(name) || strings.ContainsAny(name, "\x00\r\n") {
		return fmt.Errorf("%w: mailbox name", ErrInvalid)
	}
	return nil
}

func (a *Account) nameIndex(name string) []byte {
	return crypto.Blind(a.keys.Index, "mailbox", []byte(canonicalName(name)))
}

func (a *Account) getMailbox(tx *bolt.Tx, id MailboxID) (*mailboxRecord, error) {
	v := tx.Bucket(bktMailboxes).Get(mboxKey(id))
	if v == nil {
		return nil, ErrNotFound
	}
	r := new(mailboxRecord)
	if err := json.Unmarshal(v, r); err != nil {
		return nil, err
	}
	return r, nil
}

func (a *Account) putMailbox(tx *bolt.Tx, id MailboxID, r *mailboxRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Bucket(bktMailboxes).Put(mboxKey(id), v)
}

func (a *Account) openMailbox(id MailboxID, r *mailboxRecord) (Mailbox, error) {
	mb := Mailbox{ID: id, Role: r.Role, UIDValidity: r.UIDValidity, UIDNext: r.UIDNext, HighestModSeq: r.HighestModSeq,
		Messages: r.Messages, Unseen: r.Unseen, Size: r.Size}
	plain, err := a.rec.Open("mailboxes", mboxKey(id), r.Sealed)
	if err != nil {
		return mb, fmt.Errorf("mailbox %d: %w", id, err)
	}
	var s mailboxSecret
	if err := json.Unmarshal(plain, &s); err != nil {
		return mb, err
	}
	mb.Name, mb.Subscribed = s.Name, s.Subscribed
	return mb, nil
}

func (a *Account) sealMailbox(id MailboxID, r *mailboxRecord, s mailboxSecret) {
	plain, _ := json.Marshal(s)
	r.Sealed = a.rec.Seal("mailboxes", mboxKey(id), plain)
}

func (a *Account) createMailboxTx(tx *bolt.Tx, name, role string, subscribed bool) (Mailbox, error) {
	name = canonicalName(name)
	if err := validMailboxName(name); err != nil {
		return Mailbox{}, err
	}
	names := tx.Bucket(bktMboxNames)
	idx := a.nameIndex(name)
	if names.Get(idx) != nil {
		return Mailbox{}, fmt.Errorf("%w: mailbox", ErrExists)
	}
	if role != "" && tx.Bucket(bktRoles).Get([]byte(role)) != nil {
		role = "" // one mailbox per role; a second one is an ordinary mailbox
	}
	meta := tx.Bucket(bktAcctMeta)
	id := MailboxID(getUint32(meta.Get(metaMboxSeq)) + 1)
	meta.Put(metaMboxSeq, mboxKey(id))
	modseq := nextModSeq(tx)
	r := &mailboxRecord{UIDValidity: newUIDValidity(meta), UIDNext: 1, HighestModSeq: modseq, Role: role}
	a.sealMailbox(id, r, mailboxSecret{Name: name, Subscribed: subscribed})
	if err := a.putMailbox(tx, id, r); err != nil {
		return Mailbox{}, err
	}
	if err := names.Put(idx, mboxKey(id)); err != nil {
		return Mailbox{}, err
	}
	if role != "" {
		if err := tx.Bucket(bktRoles).Put([]byte(role), mboxKey(id)); err != nil {
			return Mailbox{}, err
		}
	}
	if err := appendChange(tx, Change{ModSeq: modseq, Kind: ChangeMailboxCreated, Mailbox: id}); err != nil {
		return Mailbox{}, err
	}
	return a.openMailbox(id, r)
}

// newUIDValidity never repeats within an account, even when a mailbox is
// deleted and recreated in the same second.
func newUIDValidity(meta *bolt.Bucket) uint32 {
	last := uint32(getUint64(meta.Get([]byte("uidvalidity"))))
	v := max(uint32(time.Now().Unix()), last+1)
	meta.Put([]byte("uidvalidity"), putUint64(uint64(v)))
	return v
}

// CreateMailbox creates a mailbox; role is "" or one of the Role constants.
func (a *Account) CreateMailbox(ctx context.Context, name, role string) (Mailbox, error) {
	var mb Mailbox
	err := a.update(func(tx *bolt.Tx) error {
		var err error
		mb, err = a.createMailboxTx(tx, name, role, true)
		return err
	})
	return mb, err
}

// Mailboxes lists every mailbox, sorted by name.
func (a *Account) Mailboxes(ctx context.Context) ([]Mailbox, error) {
	var out []Mailbox
	err := a.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bktMailboxes).ForEach(func(k, v []byte) error {
			var r mailboxRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			mb, err := a.openMailbox(MailboxID(binary.BigEndian.Uint32(k)), &r)
			if err != nil {
				return err
			}
			out = append(out, mb)
			return nil
		})
	})
	slices.SortFunc(out, func(x, y Mailbox) int { return strings.Compare(x.Name, y.Name) })
	return out, err
}

// MailboxByName finds a mailbox by its name (INBOX in any case).
func (a *Account) MailboxByName(ctx context.Context, name string) (Mailbox, error) {
	return a.mailboxVia(bktMboxNames, a.nameIndex(name))
}

// MailboxByRole finds the special mailbox with role.
func (a *Account) MailboxByRole(ctx context.Context, role string) (Mailbox, error) {
	return a.mailboxVia(bktRoles, []byte(role))
}

// mailboxVia looks a mailbox id up in an index bucket.
func (a *Account) mailboxVia(bucket, key []byte) (Mailbox, error) {
	var mb Mailbox
	err := a.view(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucket).Get(key)
		if id == nil {
			return ErrNotFound
		}
		var err error
		mb, err = a.mailboxTx(tx, MailboxID(binary.BigEndian.Uint32(id)))
		return err
	})
	return mb, err
}

// Mailbox returns a mailbox's current state.
func (a *Account) Mailbox(ctx context.Context, id MailboxID) (Mailbox, error) {
	var mb Mailbox
	err := a.view(func(tx *bolt.Tx) error {
		var err error
		mb, err = a.mailboxTx(tx, id)
		return err
	})
	return mb, err
}

func (a *Account) mailboxTx(tx *bolt.Tx, id MailboxID) (Mailbox, error) {
	r, err := a.getMailbox(tx, id)
	if err != nil {
		return Mailbox{}, err
	}
	return a.openMailbox(id, r)
}

// RenameMailbox renames one mailbox (children are the caller's business: the
// store has no hierarchy). Renaming INBOX moves its messages to a new
// mailbox and leaves INBOX empty (RFC 3501 6.3.5).
func (a *Account) RenameMailbox(ctx context.Context, id MailboxID, newName string) error {
	newName = canonicalName(newName)
	if err := validMailboxName(newName); err != nil {
		return err
	}
	return a.update(func(tx *bolt.Tx) error {
		mb, err := a.mailboxTx(tx, id)
		if err != nil {
			return err
		}
		if mb.Role == RoleInbox || newName == "INBOX" {
			if newName == "INBOX" {
				return fmt.Errorf("%w: mailbox", ErrExists)
			}
			dst, err := a.createMailboxTx(tx, newName, "", true)
			if err != nil {
				return err
			}
			uids, err := a.uidsTx(tx, id)
			if err != nil {
				return err
			}
			_, err = a.moveTx(tx, id, uids, dst.ID)
			return err
		}
		names := tx.Bucket(bktMboxNames)
		newIdx := a.nameIndex(newName)
		if names.Get(newIdx) != nil {
			return fmt.Errorf("%w: mailbox", ErrExists)
		}
		names.Delete(a.nameIndex(mb.Name))
		names.Put(newIdx, mboxKey(id))
		r, _ := a.getMailbox(tx, id)
		modseq := nextModSeq(tx)
		r.HighestModSeq = modseq
		a.sealMailbox(id, r, mailboxSecret{Name: newName, Subscribed: mb.Subscribed})
		if err := a.putMailbox(tx, id, r); err != nil {
			return err
		}
		return appendChange(tx, Change{ModSeq: modseq, Kind: ChangeMailboxRenamed, Mailbox: id})
	})
}

// SetSubscribed marks a mailbox subscribed or not (IMAP SUBSCRIBE).
func (a *Account) SetSubscribed(ctx context.Context, id MailboxID, subscribed bool) error {
	return a.update(func(tx *bolt.Tx) error {
		mb, err := a.mailboxTx(tx, id)
		if err != nil {
			return err
		}
		r, _ := a.getMailbox(tx, id)
		a.sealMailbox(id, r, mailboxSecret{Name: mb.Name, Subscribed: subscribed})
		if err := a.putMailbox(tx, id, r); err != nil {
			return err
		}
		return appendChange(tx, Change{ModSeq: nextModSeq(tx), Kind: ChangeMailboxSubscr, Mailbox: id})
	})
}

// DeleteMailbox deletes a mailbox and every message in it. INBOX stays.
func (a *Account) DeleteMailbox(ctx context.Context, id MailboxID) error {
	var unlink []blobRef
	err := a.update(func(tx *bolt.Tx) error {
		mb, err := a.mailboxTx(tx, id)
		if err != nil {
			return err
		}
		if mb.Role == RoleInbox {
			return ErrPermanentInbox
		}
		uids, err := a.uidsTx(tx, id)
		if err != nil {
			return err
		}
		_, unlink, err = a.expungeTx(tx, id, uids)
		if err != nil {
			return err
		}
		tx.Bucket(bktMboxNames).Delete(a.nameIndex(mb.Name))
		if mb.Role != "" {
			tx.Bucket(bktRoles).Delete([]byte(mb.Role))
		}
		if err := tx.Bucket(bktMailboxes).Delete(mboxKey(id)); err != nil {
			return err
		}
		return appendChange(tx, Change{ModSeq: nextModSeq(tx), Kind: ChangeMailboxDeleted, Mailbox: id})
	})
	if err == nil {
		a.h.unlinkBlobs(unlink)
	}
	return err
}
