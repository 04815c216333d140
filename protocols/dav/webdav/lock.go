package webdav

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"kreide/store"
)

// Lock timeouts. Finder asks for 10 minutes, davfs2 for 30, Windows and
// Office for an hour, and all of them refresh; a client that asks for
// Infinite gets an hour too, so a crashed laptop does not block the user's
// other devices for long.
const (
	maxLockTimeout   = time.Hour
	maxLockOwnerSize = 8 << 10
)

// lock serves LOCK (RFC 4918 section 9.10): a new lock from a lockinfo
// body, or a refresh (no body, the token in the If header).
func (rq *request) lock() {
	depth, ok := rq.depth(-1)
	if !ok || depth == 1 {
		http.Error(rq.w, "Depth must be 0 or infinity", http.StatusBadRequest)
		return
	}
	timeout := parseTimeout(rq.r.Header.Get("Timeout"))
	body, err := rq.readXML()
	if err != nil {
		rq.fail(err)
		return
	}
	tokens, ok := rq.conditions(true)
	if !ok {
		return
	}
	if body == nil {
		rq.refresh(tokens, timeout)
		return
	}
	req := store.FileLockRequest{Infinite: depth == -1, Timeout: timeout, Tokens: tokens}
	if !body.is("lockinfo") {
		http.Error(rq.w, "LOCK needs a DAV:lockinfo body", http.StatusBadRequest)
		return
	}
	if sc := body.child("lockscope"); sc != nil && sc.child("exclusive") != nil {
		req.Scope = store.FileLockExclusive
	} else if sc != nil && sc.child("shared") != nil {
		req.Scope = store.FileLockShared
	} else {
		http.Error(rq.w, "lockscope must be exclusive or shared", http.StatusBadRequest)
		return
	}
	if lt := body.child("locktype"); lt == nil || lt.child("write") == nil {
		http.Error(rq.w, "only write locks exist", http.StatusBadRequest)
		return
	}
	if ow := body.child("owner"); ow != nil {
		req.Owner = ow.fragment()
		if len(req.Owner) > maxLockOwnerSize {
			http.Error(rq.w, "lock owner too long", http.StatusBadRequest)
			return
		}
	}
	l, created, err := rq.fs.Lock(rq.ctx, rq.p(), req)
	switch {
	case errors.Is(err, store.ErrFileLocked):
		errorBody(rq.w, http.StatusLocked, "no-conflicting-lock")
		return
	case err != nil:
		rq.fail(err)
		return
	}
	rq.w.Header().Set("Lock-Token", "<"+l.Token+">")
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	rq.lockDiscovery(status, l)
}

func (rq *request) refresh(tokens []string, timeout time.Duration) {
	if len(tokens) == 0 {
		http.Error(rq.w, "a lock refresh needs the lock token in an If header", http.StatusBadRequest)
		return
	}
	l, err := rq.fs.Refresh(rq.ctx, rq.p(), tokens, timeout)
	switch {
	case errors.Is(err, store.ErrFileNoLock):
		errorBody(rq.w, http.StatusPreconditionFailed, "lock-token-matches-request-uri")
	case err != nil:
		rq.fail(err)
	default:
		rq.lockDiscovery(http.StatusOK, l)
	}
}

// lockDiscovery answers with the DAV:lockdiscovery of one lock.
func (rq *request) lockDiscovery(status int, l store.FileLock) {
	x := newXW(rq.w, status)
	x.raw(`<D:prop xmlns:D="DAV:"><D:lockdiscovery>`)
	rq.activeLock(x, l)
	x.raw("</D:lockdiscovery></D:prop>\n")
	x.flush()
}

// unlock serves UNLOCK (RFC 4918 section 9.11).
func (rq *request) unlock() {
	lt := strings.TrimSpace(rq.r.Header.Get("Lock-Token"))
	if len(lt) < 3 || lt[0] != '<' || lt[len(lt)-1] != '>' {
		http.Error(rq.w, "UNLOCK needs a Lock-Token header", http.StatusBadRequest)
		return
	}
	if _, ok := rq.conditions(true); !ok {
		return
	}
	err := rq.fs.Unlock(rq.ctx, rq.p(), lt[1:len(lt)-1])
	switch {
	case errors.Is(err, store.ErrFileNoLock):
		errorBody(rq.w, http.StatusConflict, "lock-token-matches-request-uri")
	case err != nil:
		rq.fail(err)
	default:
		rq.w.WriteHeader(http.StatusNoContent)
	}
}

// parseTimeout reads the Timeout header (RFC 4918 section 10.7): the first
// value we understand, at most maxLockTimeout.
func parseTimeout(h string) time.Duration {
	for v := range strings.SplitSeq(h, ",") {
		v = strings.TrimSpace(v)
		if strings.EqualFold(v, "Infinite") {
			return maxLockTimeout
		}
		if len(v) > 7 && strings.EqualFold(v[:7], "Second-") {
			if n, err := strconv.ParseInt(v[7:], 10, 64); err == nil && n > 0 {
				return min(time.Duration(min(n, 1<<31))*time.Second, maxLockTimeout)
			}
		}
	}
	return maxLockTimeout
}
