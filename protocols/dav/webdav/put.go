package webdav

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"kreide/store"
)

var errTooLarge = errors.New("request body larger than the server allows")

// put stores a file (RFC 9110 section 9.3.4, RFC 4918 section 9.7). The body
// streams into the store in 256 KiB pieces, sized or chunked, whatever its
// length; the new version becomes visible only once it is durable, then the
// answer is 201 (new) or 204 (replaced). A body that stops early, breaks
// the quota or the size limit leaves the previous version as it was.
func (rq *request) put() {
	r := rq.r
	if r.Header.Get("Content-Range") != "" { // RFC 9110 section 14.5: partial PUT is not supported
		http.Error(rq.w, "Content-Range is not supported with PUT", http.StatusBadRequest)
		return
	}
	if len(rq.segs) == 0 {
		rq.w.Header().Set("Allow", allowMethods)
		http.Error(rq.w, "the root is a folder", http.StatusMethodNotAllowed)
		return
	}
	o := store.FileCreateOptions{ContentType: uploadType(r.Header.Get("Content-Type"))}
	size := r.ContentLength
	if size < 0 { // Finder streams chunked bodies and announces their size here
		if n, err := strconv.ParseInt(r.Header.Get("X-Expected-Entity-Length"), 10, 64); err == nil && n >= 0 {
			size = n
		}
	}
	if rq.h.max > 0 && size > rq.h.max {
		http.Error(rq.w, errTooLarge.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	o.ExpectedSize = max(size, 0)
	// If-Match with one tag and If-None-Match: * are checked again at commit,
	// atomically; anything more complex is checked here.
	generic := r.Header.Get("If-Unmodified-Since") != ""
	if im := strings.TrimSpace(r.Header.Get("If-Match")); im == "*" {
		o.IfMatch = "*"
	} else if im != "" {
		et, rest, ok := cutEntityTag(strings.TrimPrefix(im, "W/"))
		if ok && strings.TrimSpace(rest) == "" {
			o.IfMatch = strings.Trim(et, `"`)
		} else {
			generic = true
		}
	}
	if inm := strings.TrimSpace(r.Header.Get("If-None-Match")); inm == "*" {
		o.IfNoneMatch = true
	} else if inm != "" {
		generic = true
	}
	var ok bool
	if o.Tokens, ok = rq.conditions(generic); !ok {
		return
	}
	fw, err := rq.fs.Create(rq.ctx, rq.p(), o)
	if err != nil {
		rq.fail(err)
		return
	}
	var body io.Reader = r.Body
	if rq.h.max > 0 {
		body = &limitReader{r: r.Body, left: rq.h.max}
	}
	buf := uploadBufs.Get().(*[]byte)
	_, err = io.CopyBuffer(fw, onlyReader{body}, *buf)
	uploadBufs.Put(buf)
	if err != nil {
		fw.Abort()
		if !errors.Is(err, store.ErrOverQuota) && !errors.Is(err, errTooLarge) && !store.IsNoSpace(err) {
			rq.h.log.Debug("upload interrupted", "account", rq.a.ID(), "err", err)
			http.Error(rq.w, "upload interrupted", http.StatusBadRequest)
			return
		}
		rq.fail(err)
		return
	}
	fi, created, err := fw.Commit(rq.ctx)
	if err != nil {
		rq.fail(err)
		return
	}
	rq.w.Header().Set("ETag", `"`+fi.ETag+`"`)
	if created {
		rq.w.WriteHeader(http.StatusCreated)
	} else {
		rq.w.WriteHeader(http.StatusNoContent)
	}
}

// uploadBufs hold the 256 KiB buffers uploads stream through: a fresh one
// for each PUT cost more than storing a small file does.
var uploadBufs = sync.Pool{New: func() any {
	b := make([]byte, 256<<10)
	return &b
}}

// uploadType keeps a client's media type unless it says nothing
// (application/octet-stream): then the name decides when it is served.
func uploadType(ct string) string {
	if ct == "" || len(ct) > 200 {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt == "application/octet-stream" {
		return ""
	}
	return ct
}

// onlyReader hides any WriterTo, so io.CopyBuffer uses our buffer.
type onlyReader struct{ io.Reader }

// limitReader fails with errTooLarge past left bytes.
type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			return 0, errTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	if int64(n) > l.left {
		return 0, errTooLarge
	}
	l.left -= int64(n)
	return n, err
}

// mkcol creates a folder (RFC 4918 section 9.3).
func (rq *request) mkcol() {
	if rq.hasBody() {
		http.Error(rq.w, "MKCOL with a body is not supported", http.StatusUnsupportedMediaType)
		return
	}
	tokens, ok := rq.conditions(true)
	if !ok {
		return
	}
	if len(rq.segs) == 0 {
		rq.w.Header().Set("Allow", allowMethods)
		http.Error(rq.w, "the root exists", http.StatusMethodNotAllowed)
		return
	}
	if _, err := rq.fs.Mkdir(rq.ctx, rq.p(), tokens); err != nil {
		rq.fail(err)
		return
	}
	rq.w.WriteHeader(http.StatusCreated)
}

// hasBody reports whether the request carries a non-empty body.
func (rq *request) hasBody() bool {
	if rq.r.ContentLength > 0 {
		return true
	}
	if rq.r.ContentLength == 0 || rq.r.Body == nil || rq.r.Body == http.NoBody {
		return false
	}
	var one [1]byte
	n, _ := io.ReadFull(rq.r.Body, one[:])
	return n > 0
}

// delete removes a file or a folder with everything in it (RFC 4918
// section 9.6). It is all or nothing: a lock anywhere inside without its
// token fails the whole request with 423.
func (rq *request) delete() {
	if d, ok := rq.depth(-1); !ok || d != -1 {
		if fi, err := rq.fs.Stat(rq.ctx, rq.p()); err == nil && fi.Dir || !ok {
			http.Error(rq.w, "DELETE of a folder needs Depth: infinity", http.StatusBadRequest)
			return
		}
	}
	tokens, ok := rq.conditions(true)
	if !ok {
		return
	}
	if err := rq.fs.Remove(rq.ctx, rq.p(), tokens); err != nil {
		rq.fail(err)
		return
	}
	rq.w.WriteHeader(http.StatusNoContent)
}
