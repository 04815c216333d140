package webdav

import (
	"fmt"
	"mime"
	"net/http"
	"path"
	"slices"
	"strconv"
	"time"

	"kreide/store"
)

type propName = store.FilePropName

// liveProps are the properties the server computes (RFC 4918 section 15,
// RFC 4331). They cannot be set with PROPPATCH. The quota properties are
// not part of allprop (RFC 4331 section 3).
var liveProps = []string{
	"resourcetype", "displayname", "getcontentlength", "getcontenttype", "getetag", "getlastmodified",
	"creationdate", "supportedlock", "lockdiscovery", "quota-available-bytes", "quota-used-bytes",
}

func isLive(n propName) bool { return n.Space == nsDAV && slices.Contains(liveProps, n.Local) }

func inAllprop(local string) bool {
	return local != "quota-available-bytes" && local != "quota-used-bytes"
}

type propfindMode int

const (
	pfAllprop propfindMode = iota
	pfPropname
	pfProp
)

// parsePropfind reads a PROPFIND body (nil: allprop, RFC 4918 section 9.1).
func parsePropfind(e *xelem) (propfindMode, []propName, error) {
	if e == nil {
		return pfAllprop, nil, nil
	}
	if !e.is("propfind") {
		return 0, nil, xmlError("root is not DAV:propfind")
	}
	var names []propName
	mode := propfindMode(-1)
	for _, c := range e.elems() {
		switch {
		case c.is("allprop") && mode < 0:
			mode = pfAllprop
		case c.is("propname") && mode < 0:
			mode = pfPropname
		case c.is("prop") && mode < 0:
			mode = pfProp
			names = propNames(c)
		case c.is("include"):
			names = append(names, propNames(c)...)
		}
	}
	if mode < 0 {
		return 0, nil, xmlError("propfind without allprop, propname or prop")
	}
	return mode, names, nil
}

func propNames(e *xelem) []propName {
	var out []propName
	for _, c := range e.elems() {
		out = append(out, propName{Space: c.Name.Space, Local: c.Name.Local})
	}
	return out
}

func (rq *request) propfind() {
	depth, ok := rq.depth(-1)
	if !ok {
		http.Error(rq.w, "Depth must be 0, 1 or infinity", http.StatusBadRequest)
		return
	}
	if depth < 0 { // RFC 4918 section 9.1: we may refuse, and do
		errorBody(rq.w, http.StatusForbidden, "propfind-finite-depth")
		return
	}
	body, err := rq.readXML()
	if err != nil {
		rq.fail(err)
		return
	}
	mode, names, err := parsePropfind(body)
	if err != nil {
		rq.fail(err)
		return
	}
	if _, ok := rq.conditions(false); !ok {
		return
	}
	pc := newPropCtx(rq, mode, names)
	// One read of the store for the whole listing; the answer is written
	// after it, streaming.
	list, err := rq.fs.List(rq.ctx, rq.p(), store.FileListOptions{Members: depth == 1, Props: pc.needDead, Locks: pc.needLocks})
	if err != nil {
		rq.fail(err)
		return
	}
	x := newXW(rq.w, http.StatusMultiStatus)
	x.raw(`<D:multistatus xmlns:D="DAV:">`)
	self := &list[0]
	pc.response(x, self, rq.h.href(rq.segs, self.Dir), "", len(rq.segs) > 0)
	if len(list) > 1 {
		base := rq.h.href(rq.segs, true)
		for i := range list[1:] {
			e := &list[1+i]
			if i%64 == 0 && rq.ctx.Err() != nil {
				return
			}
			if !rq.hidden(e.Name) {
				pc.response(x, e, base, e.Name, true)
			}
		}
	}
	x.raw("</D:multistatus>\n")
	x.flush()
}

// propCtx computes properties for one PROPFIND, fetching the quota once.
type propCtx struct {
	rq          *request
	mode        propfindMode
	names       []propName
	live        []bool // per name: a live property
	needDead    bool   // dead properties are asked for
	needLocks   bool   // DAV:lockdiscovery is asked for
	quotaLoaded bool
	used, quota int64
	found       xw // the properties found for the current response
	missing     []propName
}

// supportedLock is the value of DAV:supportedlock: exclusive and shared
// write locks.
const supportedLock = "<D:supportedlock>" +
	"<D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>" +
	"<D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>" +
	"</D:supportedlock>"

// The ends of the two propstat groups of a response.
var (
	propstatOK       = "</D:prop><D:status>" + statusLine(http.StatusOK) + "</D:status></D:propstat>"
	propstatNotFound = "</D:prop><D:status>" + statusLine(http.StatusNotFound) + "</D:status></D:propstat>"
)

func newPropCtx(rq *request, mode propfindMode, names []propName) *propCtx {
	pc := &propCtx{rq: rq, mode: mode, names: names, live: make([]bool, len(names))}
	for i, n := range names {
		pc.live[i] = isLive(n)
	}
	pc.needDead = mode != pfProp || slices.Contains(pc.live, false)
	pc.needLocks = mode == pfAllprop || slices.Contains(names, propName{Space: nsDAV, Local: "lockdiscovery"})
	return pc
}

func (pc *propCtx) loadQuota() {
	if !pc.quotaLoaded {
		pc.used, pc.quota, _ = pc.rq.a.Used(pc.rq.ctx)
		pc.quotaLoaded = true
	}
}

// response writes the DAV:response of one resource, whose href is base
// followed by name, escaped (and a slash for a folder). named says the
// resource has a DAV:displayname (it is not the root).
func (pc *propCtx) response(x *xw, e *store.FileEntry, base, name string, named bool) {
	fx := &pc.found
	fx.b = fx.b[:0]
	pc.missing = pc.missing[:0]
	if e.PropsErr != nil {
		pc.rq.h.log.Warn("reading dead properties", "err", e.PropsErr)
	}
	dead := e.Props
	switch pc.mode {
	case pfPropname:
		for _, l := range liveProps {
			if pc.has(l, e, named) {
				fx.prop(nsDAV, l, nil)
			}
		}
		for _, d := range dead {
			fx.prop(d.Space, d.Local, nil)
		}
	case pfAllprop:
		for _, l := range liveProps {
			if inAllprop(l) {
				pc.writeLive(fx, l, e, named)
			}
		}
		for _, d := range dead {
			fx.prop(d.Space, d.Local, d.Value)
		}
		for i, n := range pc.names { // DAV:include
			if pc.live[i] && !inAllprop(n.Local) && !pc.writeLive(fx, n.Local, e, named) {
				pc.missing = append(pc.missing, n)
			}
		}
	case pfProp:
		for i, n := range pc.names {
			if pc.live[i] {
				if !pc.writeLive(fx, n.Local, e, named) {
					pc.missing = append(pc.missing, n)
				}
				continue
			}
			j := slices.IndexFunc(dead, func(d store.FileProp) bool { return d.FilePropName == n })
			if j < 0 {
				pc.missing = append(pc.missing, n)
				continue
			}
			fx.prop(n.Space, n.Local, dead[j].Value)
		}
	}

	x.raw("<D:response><D:href>")
	x.b = append(x.b, base...)
	if name != "" {
		x.b = appendHrefEscape(x.b, name)
		if e.Dir {
			x.b = append(x.b, '/')
		}
	}
	x.raw("</D:href>")
	if len(fx.b) > 0 || len(pc.missing) == 0 {
		x.raw("<D:propstat><D:prop>")
		x.bytes(fx.b)
		x.raw(propstatOK)
	}
	if len(pc.missing) > 0 {
		x.raw("<D:propstat><D:prop>")
		for _, n := range pc.missing {
			x.prop(n.Space, n.Local, nil)
		}
		x.raw(propstatNotFound)
	}
	x.raw("</D:response>\n")
}

// has reports whether the live property applies to the resource.
func (pc *propCtx) has(local string, e *store.FileEntry, named bool) bool {
	switch local {
	case "getcontentlength", "getcontenttype":
		return !e.Dir
	case "displayname":
		return named
	}
	return true
}

// writeLive writes a live property; false if it does not apply.
func (pc *propCtx) writeLive(x *xw, local string, e *store.FileEntry, named bool) bool {
	if !pc.has(local, e, named) {
		return false
	}
	switch local {
	case "resourcetype":
		if e.Dir {
			x.raw("<D:resourcetype><D:collection/></D:resourcetype>")
		} else {
			x.raw("<D:resourcetype/>")
		}
	case "supportedlock":
		x.raw(supportedLock)
	case "lockdiscovery":
		if e.LocksErr != nil {
			return false
		}
		x.raw("<D:lockdiscovery>")
		for _, l := range e.Locks {
			pc.rq.activeLock(x, l)
		}
		x.raw("</D:lockdiscovery>")
	case "displayname":
		x.elem(local, e.Name)
	case "getcontentlength":
		x.b = strconv.AppendInt(append(x.b, "<D:getcontentlength>"...), e.Size, 10)
		x.raw("</D:getcontentlength>")
	case "getcontenttype":
		x.elem(local, contentType(e.FileInfo))
	case "getetag":
		x.b = append(append(append(x.b, `<D:getetag>"`...), e.ETag...), `"</D:getetag>`...)
		x.spill()
	case "getlastmodified":
		x.b = e.Modified.UTC().AppendFormat(append(x.b, "<D:getlastmodified>"...), http.TimeFormat)
		x.raw("</D:getlastmodified>")
	case "creationdate":
		x.b = e.Created.UTC().AppendFormat(append(x.b, "<D:creationdate>"...), time.RFC3339)
		x.raw("</D:creationdate>")
	case "quota-available-bytes":
		pc.loadQuota()
		x.elem(local, strconv.FormatInt(max(pc.quota-pc.used, 0), 10))
	case "quota-used-bytes":
		pc.loadQuota()
		x.elem(local, strconv.FormatInt(pc.used, 10))
	default:
		return false
	}
	return true
}

// activeLock writes a DAV:activelock (RFC 4918 section 14.1).
func (rq *request) activeLock(x *xw, l store.FileLock) {
	scope, depth := "exclusive", "0"
	if l.Scope == store.FileLockShared {
		scope = "shared"
	}
	if l.Infinite {
		depth = "infinity"
	}
	x.raw("<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope><D:" + scope + "/></D:lockscope>")
	x.elem("depth", depth)
	if len(l.Owner) > 0 {
		x.raw("<D:owner>")
		x.bytes(l.Owner)
		x.raw("</D:owner>")
	}
	left := max(time.Until(l.Expires), 0)
	x.elem("timeout", fmt.Sprintf("Second-%d", int64((left+time.Second-1)/time.Second)))
	x.raw("<D:locktoken>")
	x.elem("href", l.Token)
	x.raw("</D:locktoken><D:lockroot>")
	x.elem("href", rq.h.href(storeSegments(l.Root), l.RootDir))
	x.raw("</D:lockroot></D:activelock>")
}

// contentType is the stored media type, or one guessed from the name.
func contentType(fi store.FileInfo) string {
	if fi.ContentType != "" {
		return fi.ContentType
	}
	if t := mime.TypeByExtension(path.Ext(fi.Name)); t != "" {
		return t
	}
	return "application/octet-stream"
}
