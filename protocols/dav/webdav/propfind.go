package webdav

import (
	"bufio"
	"bytes"
	"fmt"
	"mime"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
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

// resource is one response of a multistatus.
type resource struct {
	segs []string
	fi   store.FileInfo
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
	fi, err := rq.fs.Stat(rq.ctx, rq.p())
	if err != nil {
		rq.fail(err)
		return
	}
	list := []resource{{rq.segs, fi}}
	if depth == 1 && fi.Dir {
		kids, err := rq.fs.ReadDir(rq.ctx, rq.p())
		if err != nil {
			rq.fail(err)
			return
		}
		for _, k := range kids {
			if !rq.hidden(k.Name) {
				list = append(list, resource{append(slices.Clip(rq.segs), k.Name), k})
			}
		}
	}
	pc := &propCtx{rq: rq}
	x := newXW(rq.w, http.StatusMultiStatus)
	x.raw(`<D:multistatus xmlns:D="DAV:">`)
	for _, res := range list {
		if err := rq.ctx.Err(); err != nil {
			return
		}
		pc.response(x, res, mode, names)
	}
	x.raw("</D:multistatus>\n")
	x.flush()
}

// propCtx computes properties for one PROPFIND, fetching the quota once.
type propCtx struct {
	rq          *request
	quotaLoaded bool
	used, quota int64
}

func (pc *propCtx) loadQuota() {
	if !pc.quotaLoaded {
		pc.used, pc.quota, _ = pc.rq.a.Used(pc.rq.ctx)
		pc.quotaLoaded = true
	}
}

// response writes the DAV:response of one resource.
func (pc *propCtx) response(x *xw, res resource, mode propfindMode, names []propName) {
	rq := pc.rq
	p := strings.Join(res.segs, "/")
	var found bytes.Buffer
	fx := &xw{w: bufio.NewWriter(&found)}
	var missing []propName

	needDead := mode != pfProp || slices.ContainsFunc(names, func(n propName) bool { return !isLive(n) })
	var dead []store.FileProp
	if needDead {
		var err error
		if dead, err = rq.fs.Props(rq.ctx, p); err != nil {
			rq.h.log.Warn("reading dead properties", "err", err)
		}
	}
	switch mode {
	case pfPropname:
		for _, l := range liveProps {
			if pc.has(l, res) {
				fx.prop(nsDAV, l, nil)
			}
		}
		for _, d := range dead {
			fx.prop(d.Space, d.Local, nil)
		}
	case pfAllprop:
		for _, l := range liveProps {
			if inAllprop(l) {
				pc.live(fx, l, res)
			}
		}
		for _, d := range dead {
			fx.prop(d.Space, d.Local, d.Value)
		}
		for _, n := range names { // DAV:include
			if isLive(n) && !inAllprop(n.Local) && !pc.live(fx, n.Local, res) {
				missing = append(missing, n)
			}
		}
	case pfProp:
		for _, n := range names {
			if isLive(n) {
				if !pc.live(fx, n.Local, res) {
					missing = append(missing, n)
				}
				continue
			}
			i := slices.IndexFunc(dead, func(d store.FileProp) bool { return d.FilePropName == n })
			if i < 0 {
				missing = append(missing, n)
				continue
			}
			fx.prop(n.Space, n.Local, dead[i].Value)
		}
	}
	fx.flush()

	x.raw("<D:response>")
	x.elem("href", rq.h.href(res.segs, res.fi.Dir))
	if found.Len() > 0 || len(missing) == 0 {
		x.raw("<D:propstat><D:prop>")
		x.w.Write(found.Bytes())
		x.raw("</D:prop>")
		x.elem("status", statusLine(http.StatusOK))
		x.raw("</D:propstat>")
	}
	if len(missing) > 0 {
		x.raw("<D:propstat><D:prop>")
		for _, n := range missing {
			x.prop(n.Space, n.Local, nil)
		}
		x.raw("</D:prop>")
		x.elem("status", statusLine(http.StatusNotFound))
		x.raw("</D:propstat>")
	}
	x.raw("</D:response>\n")
}

// has reports whether the live property applies to the resource.
func (pc *propCtx) has(local string, res resource) bool {
	switch local {
	case "getcontentlength", "getcontenttype":
		return !res.fi.Dir
	case "displayname":
		return len(res.segs) > 0
	}
	return true
}

// live writes a live property; false if it does not apply.
func (pc *propCtx) live(x *xw, local string, res resource) bool {
	if !pc.has(local, res) {
		return false
	}
	fi := res.fi
	var v string
	switch local {
	case "resourcetype":
		if fi.Dir {
			x.raw("<D:resourcetype><D:collection/></D:resourcetype>")
		} else {
			x.raw("<D:resourcetype/>")
		}
		return true
	case "supportedlock":
		x.raw("<D:supportedlock>")
		for _, s := range []string{"exclusive", "shared"} {
			x.raw("<D:lockentry><D:lockscope><D:" + s + "/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>")
		}
		x.raw("</D:supportedlock>")
		return true
	case "lockdiscovery":
		ls, err := pc.rq.fs.Locks(pc.rq.ctx, strings.Join(res.segs, "/"))
		if err != nil {
			return false
		}
		x.raw("<D:lockdiscovery>")
		for _, l := range ls {
			pc.rq.activeLock(x, l)
		}
		x.raw("</D:lockdiscovery>")
		return true
	case "displayname":
		v = fi.Name
	case "getcontentlength":
		v = strconv.FormatInt(fi.Size, 10)
	case "getcontenttype":
		v = contentType(fi)
	case "getetag":
		v = `"` + fi.ETag + `"`
	case "getlastmodified":
		v = fi.Modified.UTC().Format(http.TimeFormat)
	case "creationdate":
		v = fi.Created.UTC().Format(time.RFC3339)
	case "quota-available-bytes":
		pc.loadQuota()
		v = strconv.FormatInt(max(pc.quota-pc.used, 0), 10)
	case "quota-used-bytes":
		pc.loadQuota()
		v = strconv.FormatInt(pc.used, 10)
	default:
		return false
	}
	x.elem(local, v)
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
		x.w.Write(l.Owner)
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
