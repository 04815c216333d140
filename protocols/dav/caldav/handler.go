package caldav

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"kreide/protocols/dav/davauth"
	"kreide/store"
)

// Options configure the handler.
type Options struct {
	// Prefix is the path the handler is mounted at, with slashes: "/dav/".
	Prefix string
	// MaxResourceSize bounds one calendar object or contact in bytes
	// (CALDAV/CARDDAV:max-resource-size); 0 means 10 MiB.
	MaxResourceSize int64
	// Logger receives internal errors; nil means slog.Default().
	Logger *slog.Logger
}

// Handler serves CalDAV and CardDAV for the authenticated account.
type Handler struct {
	prefix  string
	maxSize int64
	log     *slog.Logger
	zones   zoneCache
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns the CalDAV/CardDAV handler. It expects requests
// authenticated by davauth.Middleware (davauth.Account non-nil).
func NewHandler(o Options) http.Handler {
	h := &Handler{prefix: o.Prefix, maxSize: o.MaxResourceSize, log: o.Logger}
	if h.prefix == "" {
		h.prefix = "/dav/"
	}
	if !strings.HasPrefix(h.prefix, "/") {
		h.prefix = "/" + h.prefix
	}
	if !strings.HasSuffix(h.prefix, "/") {
		h.prefix += "/"
	}
	if h.maxSize <= 0 {
		h.maxSize = 10 << 20
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	return h
}

// Kinds of resources under the prefix.
type resKind int

const (
	resRoot       resKind = iota // /dav/
	resPrincipals                // /dav/principals/
	resPrincipal                 // /dav/principals/<login>/
	resHomes                     // /dav/calendars/ or /dav/addressbooks/
	resHome                      // /dav/calendars/<login>/
	resCollection                // /dav/calendars/<login>/<slug>/
	resObject                    // /dav/calendars/<login>/<slug>/<name>
)

// resource is what a request path names.
type resource struct {
	kind  resKind
	ckind store.CollectionKind // for homes, collections and objects
	slug  string
	name  string
	coll  *store.Collection // nil when the collection does not exist
}

// request is one request's context: the account and the handler.
type request struct {
	*Handler
	ctx context.Context
	a   *store.Account
	r   *http.Request
	// colls remembers collections looked up by this request (a multiget
	// names hundreds of objects of one collection).
	colls map[string]*store.Collection
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a := davauth.Account(r.Context())
	if a == nil {
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	rq := &request{Handler: h, ctx: r.Context(), a: a, r: r}
	tw := &trackingWriter{ResponseWriter: w}
	res, err := rq.resolve(r.URL.Path)
	if err == nil {
		err = rq.serve(tw, res)
	}
	if err != nil {
		if tw.started {
			// A streamed multistatus failed half way: the client sees a
			// truncated body; nothing else can be said now.
			rq.log.Error("dav response failed after it started", "method", r.Method, "path", r.URL.Path, "err", err)
			return
		}
		rq.writeError(w, err)
	}
}

// trackingWriter notes whether a response has started.
type trackingWriter struct {
	http.ResponseWriter
	started bool
}

func (t *trackingWriter) WriteHeader(code int) {
	t.started = true
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackingWriter) Write(b []byte) (int, error) {
	t.started = true
	return t.ResponseWriter.Write(b)
}

func (rq *request) serve(w http.ResponseWriter, res *resource) error {
	switch rq.r.Method {
	case http.MethodOptions:
		return rq.options(w, res)
	case "PROPFIND":
		return rq.propfind(w, res)
	case "PROPPATCH":
		return rq.proppatch(w, res)
	case "REPORT":
		return rq.report(w, res)
	case "MKCALENDAR", "MKCOL":
		return rq.mkcol(w, res)
	case http.MethodGet, http.MethodHead:
		return rq.get(w, res)
	case http.MethodPut:
		return rq.put(w, res)
	case http.MethodDelete:
		return rq.delete(w, res)
	}
	w.Header().Set("Allow", allowed(res))
	return &davError{code: http.StatusMethodNotAllowed, msg: "method not supported here"}
}

// Collection kinds by the first path segment.
var homeSegments = map[string]store.CollectionKind{
	"calendars":    store.KindCalendar,
	"addressbooks": store.KindAddressBook,
}

func homeSegment(k store.CollectionKind) string {
	if k == store.KindAddressBook {
		return "addressbooks"
	}
	return "calendars"
}

// resolve maps a request path to a resource of the authenticated account.
// A path with another login is refused before anything is looked up.
func (rq *request) resolve(p string) (*resource, error) {
	if p+"/" == rq.prefix {
		p += "/"
	}
	if !strings.HasPrefix(p, rq.prefix) {
		return nil, &davError{code: http.StatusNotFound, msg: "not under " + rq.prefix}
	}
	rest := p[len(rq.prefix):]
	segs := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	if rest == "" {
		segs = nil
	}
	for _, s := range segs {
		if s == "" || s == "." || s == ".." {
			return nil, &davError{code: http.StatusNotFound, msg: "bad path"}
		}
	}
	if len(segs) == 0 {
		return &resource{kind: resRoot}, nil
	}
	ckind, isHome := homeSegments[segs[0]]
	if segs[0] != "principals" && !isHome {
		return nil, &davError{code: http.StatusNotFound, msg: "no such resource"}
	}
	if len(segs) >= 2 && !strings.EqualFold(segs[1], rq.a.Login()) {
		return nil, &davError{code: http.StatusForbidden, cond: xml.Name{Space: nsDAV, Local: "need-privileges"},
			msg: "only your own calendars and address books"}
	}
	if segs[0] == "principals" {
		switch len(segs) {
		case 1:
			return &resource{kind: resPrincipals}, nil
		case 2:
			return &resource{kind: resPrincipal}, nil
		}
		return nil, &davError{code: http.StatusNotFound, msg: "no such resource"}
	}
	res := &resource{ckind: ckind}
	switch len(segs) {
	case 1:
		res.kind = resHomes
		return res, nil
	case 2:
		res.kind = resHome
		return res, nil
	case 3:
		res.kind = resCollection
	case 4:
		res.kind = resObject
		res.name = segs[3]
	default:
		return nil, &davError{code: http.StatusNotFound, msg: "no such resource"}
	}
	res.slug = segs[2]
	key := homeSegment(ckind) + "/" + res.slug
	if c, ok := rq.colls[key]; ok {
		res.coll = c
		return res, nil
	}
	c, err := rq.a.CollectionBySlug(rq.ctx, ckind, res.slug)
	if err == nil {
		res.coll = &c
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if rq.colls == nil {
		rq.colls = make(map[string]*store.Collection)
	}
	rq.colls[key] = res.coll
	return res, nil
}

// Hrefs. Segments are escaped; collections end in a slash.
func escSeg(s string) string { return (&url.URL{Path: s}).EscapedPath() }

func (rq *request) principalHref() string {
	return rq.prefix + "principals/" + escSeg(rq.a.Login()) + "/"
}

func (rq *request) homeHref(k store.CollectionKind) string {
	return rq.prefix + homeSegment(k) + "/" + escSeg(rq.a.Login()) + "/"
}

func (rq *request) collHref(k store.CollectionKind, slug string) string {
	return rq.homeHref(k) + url.PathEscape(slug) + "/"
}

func (rq *request) objHref(k store.CollectionKind, slug, name string) string {
	return rq.collHref(k, slug) + url.PathEscape(name)
}

// hrefPath turns an href from a request body (absolute URL or path) into
// a decoded path.
func hrefPath(href string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(href))
	if err != nil {
		return "", err
	}
	return u.Path, nil
}

func (rq *request) options(w http.ResponseWriter, res *resource) error {
	// Not calendar-auto-schedule: kreide does not do iTIP scheduling.
	w.Header().Set("DAV", "1, 3, extended-mkcol, calendar-access, addressbook")
	w.Header().Set("Allow", allowed(res))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

func allowed(res *resource) string {
	switch res.kind {
	case resObject:
		return "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, REPORT"
	case resCollection:
		if res.coll == nil {
			if res.ckind == store.KindCalendar {
				return "OPTIONS, MKCALENDAR, MKCOL"
			}
			return "OPTIONS, MKCOL"
		}
		return "OPTIONS, PROPFIND, PROPPATCH, REPORT, DELETE"
	}
	return "OPTIONS, PROPFIND, REPORT"
}

// davError is an HTTP error with an optional precondition element
// (RFC 4918, section 16) sent as the body.
type davError struct {
	code  int
	cond  xml.Name // zero: a plain text body
	inner string   // content of the condition element (XML)
	msg   string
}

func (e *davError) Error() string { return fmt.Sprintf("%d %s", e.code, e.msg) }

func precondition(code int, ns, local, msg string) *davError {
	return &davError{code: code, cond: xml.Name{Space: ns, Local: local}, msg: msg}
}

func badRequest(format string, args ...any) *davError {
	return &davError{code: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func (rq *request) writeError(w http.ResponseWriter, err error) {
	var de *davError
	switch {
	case errors.As(err, &de):
	case errors.Is(err, store.ErrNotFound):
		de = &davError{code: http.StatusNotFound, msg: "not found"}
	case errors.Is(err, store.ErrModified):
		de = &davError{code: http.StatusPreconditionFailed, msg: "precondition failed"}
	case errors.Is(err, store.ErrOverQuota):
		de = precondition(http.StatusInsufficientStorage, nsDAV, "quota-not-exceeded", "quota exceeded")
	case store.IsNoSpace(err):
		rq.log.Error("dav: out of disk space", "method", rq.r.Method, "err", err)
		de = &davError{code: http.StatusInsufficientStorage, msg: "the server is out of disk space"}
	case errors.Is(err, store.ErrExists):
		de = &davError{code: http.StatusMethodNotAllowed, msg: "already exists"}
	case errors.Is(err, store.ErrInvalid):
		de = &davError{code: http.StatusBadRequest, msg: strings.TrimPrefix(err.Error(), "store: ")}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return
	default:
		rq.log.Error("dav request failed", "method", rq.r.Method, "path", rq.r.URL.Path, "err", err)
		de = &davError{code: http.StatusInternalServerError, msg: "internal error"}
	}
	if de.cond.Local == "" {
		http.Error(w, de.msg, de.code)
		return
	}
	w.Header().Set("Content-Type", `application/xml; charset="utf-8"`)
	w.WriteHeader(de.code)
	fmt.Fprintf(w, "%s<d:error%s>%s<d:responsedescription>%s</d:responsedescription></d:error>\n",
		xml.Header, rootDecls(), element(de.cond, de.inner), esc(de.msg))
}
