// Package webdav serves each user's file tree over WebDAV class 1 and 2
// (RFC 4918), so that Windows Explorer, macOS Finder, GNOME Files, davfs2,
// rclone and cadaver can mount or sync it. It is its own small server rather
// than go-webdav's: that one has no LOCK/UNLOCK, no If header and no dead
// properties, which Explorer and Finder need to mount a drive writable.
//
// The handler expects the authenticated *store.Account in the request
// context (davauth.Middleware) and speaks to store.Files only; paths under
// Options.Prefix map one to one onto the user's tree.
//
// One file per concern: handler.go (routing, paths, errors, OPTIONS),
// conditions.go (If, If-Match, ...), propfind.go, proppatch.go, get.go,
// put.go (PUT, MKCOL, DELETE), copymove.go, lock.go, scratch.go (desktop
// scratch files), xmlin.go and xmlout.go.
package webdav

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"

	"kreide/protocols/dav/davauth"
	"kreide/store"
)

// Options configure the handler.
type Options struct {
	// Prefix is the URL path the tree is mounted at, for example "/files/".
	Prefix string
	// MaxUploadSize is the largest PUT body in bytes (0: only the quota limits).
	MaxUploadSize int64
	// Logger receives unexpected errors (nil: slog.Default()).
	Logger *slog.Logger
}

type handler struct {
	prefix string // with a trailing slash
	max    int64
	log    *slog.Logger
}

// NewHandler returns the WebDAV handler for the authenticated user's files.
func NewHandler(o Options) http.Handler {
	h := &handler{prefix: o.Prefix, max: o.MaxUploadSize, log: o.Logger}
	if !strings.HasPrefix(h.prefix, "/") {
		h.prefix = "/" + h.prefix
	}
	if !strings.HasSuffix(h.prefix, "/") {
		h.prefix += "/"
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.log = h.log.With("proto", "webdav")
	return h
}

const allowMethods = "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, PROPFIND, PROPPATCH, COPY, MOVE, LOCK, UNLOCK"

// request is one request being served.
type request struct {
	h    *handler
	w    http.ResponseWriter
	r    *http.Request
	ctx  context.Context
	a    *store.Account
	fs   *store.Files
	segs []string // the resource's names from the root of the tree
}

// p is the resource's path in the store.
func (rq *request) p() string { return strings.Join(rq.segs, "/") }

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a := davauth.Account(r.Context())
	if a == nil {
		h.log.Error("webdav handler mounted without davauth.Middleware")
		http.Error(w, "not authenticated", http.StatusInternalServerError)
		return
	}
	segs, err := h.segments(r.URL.EscapedPath())
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, errOutside) {
			status = http.StatusNotFound
		}
		http.Error(w, err.Error(), status)
		return
	}
	rq := &request{h: h, w: w, r: r, ctx: r.Context(), a: a, fs: a.Files(), segs: segs}
	switch r.Method {
	case "OPTIONS":
		rq.options()
	case "GET", "HEAD":
		rq.get()
	case "PUT":
		rq.put()
	case "DELETE":
		rq.delete()
	case "MKCOL":
		rq.mkcol()
	case "PROPFIND":
		rq.propfind()
	case "PROPPATCH":
		rq.proppatch()
	case "COPY", "MOVE":
		rq.copyMove(r.Method == "MOVE")
	case "LOCK":
		rq.lock()
	case "UNLOCK":
		rq.unlock()
	default:
		w.Header().Set("Allow", allowMethods)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

var errOutside = errors.New("not under the WebDAV prefix")

// segments maps an escaped URL path under the prefix to the names of a
// resource. Each segment is decoded on its own, so an encoded slash cannot
// split a name and an encoded dot segment is refused; the store checks the
// names again.
func (h *handler) segments(escaped string) ([]string, error) {
	var rest string
	switch {
	case escaped+"/" == h.prefix:
	case strings.HasPrefix(escaped, h.prefix):
		rest = escaped[len(h.prefix):]
	default:
		return nil, errOutside
	}
	var segs []string
	for s := range strings.SplitSeq(rest, "/") {
		if s == "" {
			continue
		}
		name, err := url.PathUnescape(s)
		if err != nil {
			return nil, errors.New("malformed percent-encoding in path")
		}
		if name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
			return nil, errors.New("invalid path segment")
		}
		segs = append(segs, name)
	}
	return segs, nil
}

// href is the URL path of a resource; folders end in a slash.
func (h *handler) href(segs []string, dir bool) string {
	var b strings.Builder
	b.WriteString(h.prefix)
	for i, s := range segs {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(hrefEscape(s))
	}
	if dir && len(segs) > 0 {
		b.WriteByte('/')
	}
	return b.String()
}

// sameHost reports whether an absolute URL (Destination, If tags) names
// this server: the request's Host, ports compared with their defaults.
func sameHost(u *url.URL, reqHost string) bool {
	if u.Host == "" {
		return true
	}
	norm := func(host, scheme string) string {
		h, p, err := net.SplitHostPort(host)
		if err != nil {
			h, p = strings.Trim(host, "[]"), ""
		}
		if p == "" || p == "80" && scheme != "https" || p == "443" && scheme == "https" {
			p = ""
		}
		return strings.ToLower(h) + ":" + p
	}
	return norm(u.Host, u.Scheme) == norm(reqHost, u.Scheme)
}

func storeSegments(p string) []string {
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// fail answers with the status a store error maps to.
func (rq *request) fail(err error) {
	status := statusFor(err)
	if status == http.StatusInternalServerError || store.IsNoSpace(err) {
		rq.h.log.Error("request failed", "method", rq.r.Method, "account", rq.a.ID(), "err", err)
	}
	switch status {
	case http.StatusLocked:
		errorBody(rq.w, status, "lock-token-submitted")
	default:
		http.Error(rq.w, http.StatusText(status), status)
	}
}

func statusFor(err error) int {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, store.ErrFileNoParent), errors.Is(err, store.ErrFileNotFolder):
		return http.StatusConflict
	case errors.Is(err, store.ErrFileLocked):
		return http.StatusLocked
	case errors.Is(err, store.ErrOverQuota), store.IsNoSpace(err):
		return http.StatusInsufficientStorage // RFC 4918 section 11.5
	case errors.Is(err, store.ErrFileForbidden):
		return http.StatusForbidden
	case errors.Is(err, store.ErrFileIsFolder), errors.Is(err, store.ErrExists):
		return http.StatusMethodNotAllowed
	case errors.Is(err, store.ErrModified):
		return http.StatusPreconditionFailed
	case errors.Is(err, store.ErrInvalid), errors.Is(err, errXML):
		return http.StatusBadRequest
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, context.Canceled):
		return 499 // the client went away; nobody reads this
	}
	return http.StatusInternalServerError
}

// options answers OPTIONS (RFC 4918 section 10.1): class 1 and 2, and the
// header Windows' Web Folders look for before they allow writing.
func (rq *request) options() {
	h := rq.w.Header()
	h.Set("DAV", "1, 2")
	h.Set("MS-Author-Via", "DAV")
	h.Set("Allow", allowMethods)
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Length", "0")
	rq.w.WriteHeader(http.StatusOK)
}

// readXML parses a request body of at most maxXMLBody bytes; nil if empty.
func (rq *request) readXML() (*xelem, error) {
	if rq.r.ContentLength == 0 || rq.r.Body == nil || rq.r.Body == http.NoBody {
		return nil, nil
	}
	body := http.MaxBytesReader(rq.w, rq.r.Body, maxXMLBody)
	var first [1]byte
	n, _ := body.Read(first[:])
	if n == 0 {
		return nil, nil
	}
	e, err := parseXML(&prefixReader{first: first[:n], r: body})
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return nil, errTooLarge
	}
	return e, err
}

// prefixReader returns first, then reads from r.
type prefixReader struct {
	first []byte
	r     interface{ Read([]byte) (int, error) }
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.first) > 0 {
		n := copy(b, p.first)
		p.first = p.first[n:]
		return n, nil
	}
	return p.r.Read(b)
}

// depth parses the Depth header: 0, 1 or -1 (infinity); def when absent.
func (rq *request) depth(def int) (int, bool) {
	switch strings.ToLower(strings.TrimSpace(rq.r.Header.Get("Depth"))) {
	case "":
		return def, true
	case "0":
		return 0, true
	case "1":
		return 1, true
	case "infinity":
		return -1, true
	}
	return 0, false
}
