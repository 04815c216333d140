package store

import (
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// dropMapping removes the process's mappings of db's pages (the first
// tx.Size() bytes of its memory map) with madvise(MADV_DONTNEED); see
// pool.unmapQuiet. Call it inside tx, a read transaction: it keeps bbolt from
// remapping meanwhile, and tx.Size() never exceeds the mapping.
func dropMapping(db *bolt.DB, tx *bolt.Tx) {
	n := tx.Size()
	if n <= 0 {
		return
	}
	// A raw syscall on the address bbolt reports, rather than
	// syscall.Madvise on a slice made from it with unsafe. Failure (an old
	// kernel, say) only leaves the pages mapped.
	syscall.Syscall(syscall.SYS_MADVISE, db.Info().Data, uintptr(n), syscall.MADV_DONTNEED)
}
