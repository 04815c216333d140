package store

import (
	"bytes"
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
		dk  *deliveryKey
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
		dk, err := h.deliveryKey(d)
		if err != nil {
			d.pool.release(h)
			errs[i] = err
			continue
		}
		c := &copyState{h: h, id: rc.AccountID, dk: dk, key: crypto.NewKey()}
		c.bw = h.newBlobWriter(c.key)
		copies[i] = c
		writers = append(writers, c.bw)
	}
	if len(writers) == 0 {
		return errs, errors.Join(errs...)
	}
	var hc headerCapture // the header block, cached beside the structure
	writers = append(writers, &hc)
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
	header := hc.header(st)
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
		dk := c.dk
		wrapped := append(dk.id[:], crypto.WrapKey(dk.key, c.key[:], contentAAD(c.id, ref.ID))...)
		rec := &msgRecord{Size: size, Date: nowSecond(), Blob: ref, KeyWrap: keyWrapDelivery, Key: wrapped}
		sealedStruct := crypto.WrapKey(c.key, structPlain, structAAD(c.id, ref.ID))
		sealedHeader := sealHeader(c.id, c.key, ref.ID, header)
		junk := rcpts[i].Junk
		err = c.h.batch(func(tx *bolt.Tx) error {
			mbox, err := deliveryMailbox(tx, junk)
			if err != nil {
				return err
			}
			if err := putDeliveryKey(tx, dk); err != nil {
				return err
			}
			if _, _, err = c.h.insertMessage(tx, mbox, rec, true, inline, sealedStruct); err != nil {
				return err
			}
			if err := putHeader(tx, ref.ID, sealedHeader); err != nil {
				return err
			}
			return addPending(tx, 1)
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

// addPending adds n to the count of messages waiting for upgradeLocked
// (metaPending), or takes n off it (n < 0, never below zero).
func addPending(tx *bolt.Tx, n int64) error {
	b := tx.Bucket(bktAcctMeta)
	v := b.Get(metaPending)
	cur := int64(getUint64(v))
	next := max(cur+n, 0)
	if next == cur && v != nil {
		return nil
	}
	return b.Put(metaPending, putUint64(uint64(next)))
}

// upgradeBatch is how many messages upgradeLocked re-wraps per transaction.
const upgradeBatch = 500

// upgradeLocked re-wraps the content keys of messages delivered while the
// account was locked under its blob key, so each is HPKE-opened once in its
// life. It runs in the background after an unlock, once per open handle.
//
// It reads the msgs bucket only when metaPending says deliveries came since
// the last pass (or, in a store from before the count, once): an unlock must
// not map every page of a large mailbox into memory, nor write to the
// database, to find that there is nothing to do.
func (d *Directory) upgradeLocked(info AccountInfo, umk crypto.Key) {
	a, err := d.openAccountNoUpgrade(info, umk)
	if err != nil {
		return
	}
	defer a.Close()
	var pending uint64
	var counted bool
	err = a.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bktAcctMeta).Get(metaPending)
		pending, counted = getUint64(v), v != nil
		return nil
	})
	if err != nil || counted && pending == 0 {
		return
	}
	// The pass may open several delivery keys (one per handle that took
	// deliveries since the last pass): expand the private key once for all
	// of them. The expanded key lives as long as the pass.
	if x, err := a.kem.Expand(); err == nil {
		a.kem = x
	}
	var from []byte // nil: from the first message
	for {
		todo, next, err := a.nextPending(from)
		if err != nil {
			return
		}
		if len(todo) > 0 {
			if err := a.rewrapDelivered(todo); err != nil {
				return
			}
		}
		if next == nil {
			break
		}
		from = next
	}
	// Every message delivered before the count was read has been seen
	// (later ones may have been too; they are looked for again next time).
	// No notify: nothing a session shows has changed.
	a.h.batch(func(tx *bolt.Tx) error { return addPending(tx, -int64(pending)) })
}

// nextPending returns, in a read transaction, the keys of up to upgradeBatch
// messages from from on (nil: from the first) whose content keys are not
// under the blob key, and where to go on from (nil at the end).
func (a *Account) nextPending(from []byte) (todo [][]byte, next []byte, err error) {
	err = a.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bktMsgs).Cursor()
		k, v := c.First()
		if from != nil {
			k, v = c.Seek(from)
		}
		for ; k != nil; k, v = c.Next() {
			if len(todo) == upgradeBatch {
				next = bytes.Clone(k)
				return nil
			}
			if len(v) < 2 {
				continue
			}
			rec, err := unmarshalMsgRecord(v)
			if err == nil && (rec.KeyWrap == keyWrapSealed || rec.KeyWrap == keyWrapDelivery) {
				todo = append(todo, bytes.Clone(k))
			}
		}
		return nil
	})
	return todo, next, err
}

// rewrapDelivered re-wraps the content keys of the messages under keys, in
// one write transaction; each record is read again there, as flag changes
// or an expunge may have come in between.
func (a *Account) rewrapDelivered(keys [][]byte) error {
	return a.h.batch(func(tx *bolt.Tx) error {
		msgs := tx.Bucket(bktMsgs)
		for _, k := range keys {
			v := msgs.Get(k)
			if len(v) < 2 {
				continue
			}
			rec, err := unmarshalMsgRecord(v)
			if err != nil || (rec.KeyWrap != keyWrapSealed && rec.KeyWrap != keyWrapDelivery) {
				continue
			}
			key, err := a.contentKey(tx, rec)
			if err != nil {
				continue // left for a check to report; never block other messages
			}
			rec.KeyWrap = keyWrapBlob
			rec.Key = crypto.WrapKey(a.keys.Blob, key[:], contentAAD(a.id, rec.Blob.ID))
			if err := msgs.Put(k, rec.marshal()); err != nil {
				return err
			}
		}
		return nil
	})
}

func (d *Directory) openAccountNoUpgrade(info AccountInfo, umk crypto.Key) (*Account, error) {
	priv, err := crypto.UnwrapKey(umk, info.PrivateKey, []byte("kem-private|"+info.ID))
	if err != nil {
		return nil, err
	}
	// Only the seed is kept (crypto.KEMPrivateKey): it is expanded when
	// something is opened, which an IMAP session in IDLE never does.
	kem, err := crypto.ParseKEMPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	h, err := d.pool.acquireWith(info.ID, &info)
	if err != nil {
		return nil, err
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

// deliveryKey returns the handle's delivery key, making it on the first
// delivery: the account's public key is read and parsed for that alone and
// not kept (expanded, ML-KEM's is about 6 KiB).
func (h *handle) deliveryKey(d *Directory) (*deliveryKey, error) {
	if dk := h.dkey.Load(); dk != nil {
		return dk, nil
	}
	h.dkeyMu.Lock()
	defer h.dkeyMu.Unlock()
	if dk := h.dkey.Load(); dk != nil {
		return dk, nil
	}
	info, err := d.accountByID(h.id)
	if err != nil {
		return nil, err
	}
	pk, err := crypto.ParseKEMPublicKey(info.PublicKey)
	if err != nil {
		return nil, err
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
// the private key; opened keys are remembered in the handle's memory, so the
// private key is expanded and used once per delivery key and handle, not per
// message. Mail delivered since the handle was opened needs no opening: the
// handle made its delivery key and holds it already.
func (a *Account) openDeliveryKey(tx *bolt.Tx, wrapped []byte) (crypto.Key, error) {
	var dk crypto.Key
	if len(wrapped) < deliveryKeyIDLen {
		return dk, errBadRecord
	}
	var id [deliveryKeyIDLen]byte
	copy(id[:], wrapped)
	if cur := a.h.dkey.Load(); cur != nil && cur.id == id {
		return cur.key, nil
	}
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
	if a.h.opened == nil {
		a.h.opened = make(map[[deliveryKeyIDLen]byte]crypto.Key)
	}
	a.h.opened[id] = dk
	a.h.dkeyMu.Unlock()
	return dk, nil
}
