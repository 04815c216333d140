package store

import (
	"context"
	"crypto/rand"
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
		dk, err := c.h.deliveryKey(c.pk)
		if err != nil {
			errs[i] = err
			c.h.unlinkBlobs([]blobRef{ref})
			continue
		}
		wrapped := append(dk.id[:], crypto.WrapKey(dk.key, c.key[:], contentAAD(c.id, ref.ID))...)
		rec := &msgRecord{Size: size, Date: nowSecond(), Blob: ref, KeyWrap: keyWrapDelivery, Key: wrapped}
		sealedStruct := crypto.WrapKey(c.key, structPlain, structAAD(c.id, ref.ID))
		junk := rcpts[i].Junk
		err = c.h.batch(func(tx *bolt.Tx) error {
			mbox, err := deliveryMailbox(tx, junk)
			if err != nil {
				return err
			}
			if err := putDeliveryKey(tx, dk); err != nil {
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
				if err != nil || (rec.KeyWrap != keyWrapSealed && rec.KeyWrap != keyWrapDelivery) {
					continue
				}
				todo = append(todo, pending{append([]byte(nil), k...), rec})
			}
			for _, p := range todo {
				key, err := a.contentKey(tx, p.rec)
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

const deliveryKeyIDLen = 8

// deliveryKey wraps the content keys of messages delivered while the account
// is locked. It is made once per open handle and sealed (HPKE) to the
// account's public key; only the private key, after an unlock, opens it.
type deliveryKey struct {
	id     [deliveryKeyIDLen]byte
	key    crypto.Key
	sealed []byte
}

func deliveryKeyInfo(account string, id []byte) []byte {
	return append([]byte("delivery-key|"+account+"|"), id...)
}

func (h *handle) deliveryKey(pk *crypto.KEMPublicKey) (*deliveryKey, error) {
	if dk := h.dkey.Load(); dk != nil {
		return dk, nil
	}
	h.dkeyMu.Lock()
	defer h.dkeyMu.Unlock()
	if dk := h.dkey.Load(); dk != nil {
		return dk, nil
	}
	dk := &deliveryKey{key: crypto.NewKey()}
	rand.Read(dk.id[:])
	sealed, err := pk.Seal(deliveryKeyInfo(h.id, dk.id[:]), dk.key[:])
	if err != nil {
		return nil, err
	}
	dk.sealed = sealed
	h.dkey.Store(dk)
	return dk, nil
}

// putDeliveryKey stores the sealed delivery key in the transaction of the
// first message that uses it (idempotent, as Batch requires).
func putDeliveryKey(tx *bolt.Tx, dk *deliveryKey) error {
	b := tx.Bucket(bktDKeys)
	if b.Get(dk.id[:]) != nil {
		return nil
	}
	return b.Put(dk.id[:], dk.sealed)
}

// openDeliveryKey opens the delivery key a wrapped content key names, with
// the private key; opened keys are remembered in the handle's memory.
func (a *Account) openDeliveryKey(tx *bolt.Tx, wrapped []byte) (crypto.Key, error) {
	var dk crypto.Key
	if len(wrapped) < deliveryKeyIDLen {
		return dk, errBadRecord
	}
	var id [deliveryKeyIDLen]byte
	copy(id[:], wrapped)
	a.h.dkeyMu.Lock()
	k, ok := a.h.opened[id]
	a.h.dkeyMu.Unlock()
	if ok {
		return k, nil
	}
	sealed := tx.Bucket(bktDKeys).Get(id[:])
	if sealed == nil {
		return dk, errBadRecord
	}
	raw, err := a.kem.Open(deliveryKeyInfo(a.id, id[:]), sealed)
	if err != nil || len(raw) != len(dk) {
		return dk, crypto.ErrDecrypt
	}
	copy(dk[:], raw)
	a.h.dkeyMu.Lock()
	a.h.opened[id] = dk
	a.h.dkeyMu.Unlock()
	return dk, nil
}
