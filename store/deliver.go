package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"

	"kreide/crypto"
)

// Recipient is one account a delivery goes to.
type Recipient struct {
	AccountID string
	// Junk files the message into the account's Junk mailbox instead of INBOX.
	Junk bool
}

// Deliver stores one message for several accounts without their keys (the
// public-key path): each copy gets its own content key, sealed to the
// account's public key. r is read once. It returns one error per recipient
// (nil: that copy is durable) and an error if nothing could be stored.
// Concurrent deliveries to one account share fsyncs (bbolt Batch).
func (d *Directory) Deliver(ctx context.Context, rcpts []Recipient, r io.Reader) ([]error, error) {
	type copyState struct {
		h   *handle
		id  string
		pk  *crypto.KEMPublicKey
		key crypto.Key
		bw  *blobWriter
	}
	errs := make([]error, len(rcpts))
	copies := make([]*copyState, len(rcpts))
	var writers []io.Writer
	defer func() {
		for _, c := range copies {
			if c != nil {
				d.pool.release(c.h)
			}
		}
	}()
	for i, rc := range rcpts {
		h, err := d.pool.acquire(rc.AccountID)
		if err != nil {
			errs[i] = err
			continue
		}
		pk := h.pub.Load()
		if pk == nil {
			info, err := d.accountByID(rc.AccountID)
			if err == nil {
				pk, err = h.publicKey(info)
			}
			if err != nil {
				d.pool.release(h)
				errs[i] = err
				continue
			}
		}
		c := &copyState{h: h, id: rc.AccountID, pk: pk, key: crypto.NewKey()}
		c.bw = h.newBlobWriter(c.key)
		copies[i] = c
		writers = append(writers, c.bw)
	}
	if len(writers) == 0 {
		return errs, errors.Join(errs...)
	}
	st, size, err := parseWhileWriting(io.MultiWriter(writers...), r)
	if err != nil {
		for _, c := range copies {
			if c != nil {
				c.bw.abort()
			}
		}
		return errs, err
	}
	structPlain := st.Marshal()
	ok := 0
	for i, c := range copies {
		if c == nil {
			continue
		}
		ref, inline, err := c.bw.finish()
		if err != nil {
			errs[i] = err
			continue
		}
		aad := contentAAD(c.id, ref.ID)
		wrapped, err := c.pk.Seal(aad, c.key[:])
		if err != nil {
			errs[i] = err
			c.h.unlinkBlobs([]blobRef{ref})
			continue
		}
		rec := &msgRecord{Size: size, Date: nowSecond(), Blob: ref, KeyWrap: keyWrapSealed, Key: wrapped}
		sealedStruct := crypto.WrapKey(c.key, structPlain, structAAD(c.id, ref.ID))
		junk := rcpts[i].Junk
		err = c.h.db.Batch(func(tx *bolt.Tx) error {
			mbox, err := deliveryMailbox(tx, junk)
			if err != nil {
				return err
			}
			_, _, err = c.h.insertMessage(tx, mbox, rec, true, inline, sealedStruct)
			return err
		})
		if err != nil {
			errs[i] = err
			c.h.unlinkBlobs([]blobRef{ref})
			continue
		}
		c.h.notify()
		ok++
	}
	if ok == 0 {
		return errs, errors.Join(errs...)
	}
	return errs, nil
}

func deliveryMailbox(tx *bolt.Tx, junk bool) (MailboxID, error) {
	roles := tx.Bucket(bktRoles)
	if junk {
		if id := roles.Get([]byte(RoleJunk)); id != nil {
			return MailboxID(binary.BigEndian.Uint32(id)), nil
		}
	}
	id := roles.Get([]byte(RoleInbox))
	if id == nil {
		return 0, fmt.Errorf("%w: INBOX", ErrNotFound)
	}
	return MailboxID(binary.BigEndian.Uint32(id)), nil
}

// upgradeLocked re-wraps the content keys of messages delivered while the
// account was locked under its blob key, so each is HPKE-opened once in its
// life. It runs in the background after an unlock.
func (d *Directory) upgradeLocked(info AccountInfo, umk crypto.Key) {
	a, err := d.openAccountNoUpgrade(info, umk)
	if err != nil {
		return
	}
	defer a.Close()
	for {
		n := 0
		err := a.h.db.Update(func(tx *bolt.Tx) error {
			n = 0
			msgs := tx.Bucket(bktMsgs)
			c := msgs.Cursor()
			type pending struct {
				k   []byte
				rec *msgRecord
			}
			var todo []pending
			for k, v := c.First(); k != nil && len(todo) < 500; k, v = c.Next() {
				if len(v) < 2 {
					continue
				}
				rec, err := unmarshalMsgRecord(v)
				if err != nil || rec.KeyWrap != keyWrapSealed {
					continue
				}
				todo = append(todo, pending{append([]byte(nil), k...), rec})
			}
			for _, p := range todo {
				key, err := a.contentKey(p.rec)
				if err != nil {
					continue // left for a check to report; never block other messages
				}
				p.rec.KeyWrap = keyWrapBlob
				p.rec.Key = crypto.WrapKey(a.keys.Blob, key[:], contentAAD(a.id, p.rec.Blob.ID))
				if err := msgs.Put(p.k, p.rec.marshal()); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil || n == 0 {
			return
		}
	}
}

func (d *Directory) openAccountNoUpgrade(info AccountInfo, umk crypto.Key) (*Account, error) {
	priv, err := crypto.UnwrapKey(umk, info.PrivateKey, []byte("kem-private|"+info.ID))
	if err != nil {
		return nil, err
	}
	h, err := d.pool.acquire(info.ID)
	if err != nil {
		return nil, err
	}
	kem := h.priv.Load()
	if kem == nil {
		if kem, err = crypto.ParseKEMPrivateKey(priv); err != nil {
			d.pool.release(h)
			return nil, err
		}
		h.priv.Store(kem)
	}
	keys := crypto.DeriveUserKeys(umk)
	return &Account{d: d, h: h, id: info.ID, login: info.Login, umk: umk, keys: keys, rec: crypto.NewRecordCipher(keys.Record, info.ID), kem: kem}, nil
}
