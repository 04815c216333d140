//go:build !linux

package store

import bolt "go.etcd.io/bbolt"

// dropMapping does nothing outside Linux, whose fault-around and RSS
// accounting it is about (see unmap_linux.go).
func dropMapping(db *bolt.DB, tx *bolt.Tx) {}
