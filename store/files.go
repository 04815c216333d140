package store

import bolt "go.etcd.io/bbolt"

// fileBuckets are the buckets of the file tree (WebDAV).
var fileBuckets = [][]byte{}

// createDefaultFiles gives a new account its (empty) file tree.
func (a *Account) createDefaultFiles(tx *bolt.Tx) error { return nil }
