package webdav

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"kreide/store"
)

// copyMove serves COPY and MOVE (RFC 4918 sections 9.8 and 9.9). The store
// does each in one transaction: the destination is replaced (Overwrite: T,
// the default) or the request fails with 412 (Overwrite: F); 201 means the
// destination is new, 204 that it was replaced.
func (rq *request) copyMove(move bool) {
	r := rq.r
	dst, status := rq.destination()
	if status != 0 {
		http.Error(rq.w, "bad Destination", status)
		return
	}
	o := store.FileCopyOptions{}
	switch strings.ToUpper(strings.TrimSpace(r.Header.Get("Overwrite"))) {
	case "", "T":
		o.Overwrite = true
	case "F":
	default:
		http.Error(rq.w, "Overwrite must be T or F", http.StatusBadRequest)
		return
	}
	depth, ok := rq.depth(-1)
	switch {
	case !ok || depth == 1:
		http.Error(rq.w, "Depth must be 0 or infinity", http.StatusBadRequest)
		return
	case move && depth != -1:
		http.Error(rq.w, "MOVE needs Depth: infinity", http.StatusBadRequest)
		return
	}
	o.Shallow = depth == 0
	if o.Tokens, ok = rq.conditions(true); !ok {
		return
	}
	var created bool
	var err error
	if move {
		created, err = rq.fs.Move(rq.ctx, rq.p(), dst, o)
	} else {
		created, err = rq.fs.Copy(rq.ctx, rq.p(), dst, o)
	}
	switch {
	case errors.Is(err, store.ErrExists):
		http.Error(rq.w, "destination exists", http.StatusPreconditionFailed)
	case err != nil:
		rq.fail(err)
	case created:
		rq.w.WriteHeader(http.StatusCreated)
	default:
		rq.w.WriteHeader(http.StatusNoContent)
	}
}

// destination parses the Destination header: an absolute URL on this host
// or an absolute path, under the prefix. Elsewhere is 502 (RFC 4918
// section 9.8.5).
func (rq *request) destination() (string, int) {
	d := rq.r.Header.Get("Destination")
	if d == "" {
		return "", http.StatusBadRequest
	}
	u, err := url.Parse(d)
	if err != nil {
		return "", http.StatusBadRequest
	}
	if !sameHost(u, rq.r.Host) {
		return "", http.StatusBadGateway
	}
	segs, err := rq.h.segments(u.EscapedPath())
	switch {
	case errors.Is(err, errOutside):
		return "", http.StatusBadGateway
	case err != nil:
		return "", http.StatusBadRequest
	}
	return strings.Join(segs, "/"), 0
}
