package store

import "errors"

// Errors returned by the store. Protocol adapters map them to protocol replies
// (for example ErrOverQuota to IMAP NO [OVERQUOTA], SMTP 552 and HTTP 507).
var (
	ErrAuthFailed     = errors.New("store: authentication failed")
	ErrNotFound       = errors.New("store: not found")
	ErrExists         = errors.New("store: already exists")
	ErrOverQuota      = errors.New("store: quota exceeded")
	ErrLocked         = errors.New("store: account is locked")
	ErrClosed         = errors.New("store: closed")
	ErrInvalid        = errors.New("store: invalid argument")
	ErrModified       = errors.New("store: modified since")
	ErrUnknownDomain  = errors.New("store: domain not served here")
	ErrDataDirInUse   = errors.New("store: data dir is in use by another kreide process")
	ErrWeakPassword   = errors.New("store: password too short (at least 8 characters)")
	ErrPermanentInbox = errors.New("store: INBOX cannot be deleted or renamed away")
)
