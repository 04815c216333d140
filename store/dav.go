package store

import bolt "go.etcd.io/bbolt"

// davBuckets are the buckets of the calendar and contact model.
var davBuckets = [][]byte{}

// createDefaultDAV gives a new account its calendar, task list and address book.
func (a *Account) createDefaultDAV(tx *bolt.Tx) error { return nil }
