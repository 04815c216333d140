package store

import (
	"errors"
	"syscall"
)

// IsNoSpace reports whether err comes from a full disk (ENOSPC) or an
// exhausted file system quota (EDQUOT) under the data dir, as opposed to the
// account's own quota (ErrOverQuota). The write order (doc.go) means nothing
// was stored: at worst an orphan blob is left, which the sweep removes.
// Protocols answer with a temporary error (SMTP 452 4.3.1, IMAP NO
// [UNAVAILABLE], HTTP 507) and log it for the administrator.
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
