package webdav

import (
	"errors"
	"net/http"

	"kreide/store"
)

// proppatch sets and removes dead properties (RFC 4918 section 9.2), in
// document order and all or nothing. Windows Explorer stores its
// Win32CreationTime, Win32LastModifiedTime and Win32FileAttributes this
// way; they come back in PROPFIND like any dead property. Live properties
// are protected: the request then fails with 403 for them and 424 for the
// rest.
func (rq *request) proppatch() {
	body, err := rq.readXML()
	if err != nil {
		rq.fail(err)
		return
	}
	if body == nil || !body.is("propertyupdate") {
		http.Error(rq.w, "PROPPATCH needs a DAV:propertyupdate body", http.StatusBadRequest)
		return
	}
	var patch []store.FilePropPatch
	for _, op := range body.elems() {
		remove := op.is("remove")
		if !remove && !op.is("set") {
			continue
		}
		for _, pr := range op.elems() {
			if !pr.is("prop") {
				continue
			}
			for _, e := range pr.elems() {
				pp := store.FilePropPatch{FilePropName: propName{Space: e.Name.Space, Local: e.Name.Local}, Remove: remove}
				if !remove {
					pp.Value = e.fragment()
				}
				patch = append(patch, pp)
			}
		}
	}
	if len(patch) == 0 {
		http.Error(rq.w, "PROPPATCH without properties", http.StatusBadRequest)
		return
	}
	tokens, ok := rq.conditions(true)
	if !ok {
		return
	}
	if _, err := rq.fs.Stat(rq.ctx, rq.p()); err != nil {
		rq.fail(err)
		return
	}
	status := map[propName]int{}
	protected := false
	for _, pp := range patch {
		if isLive(pp.FilePropName) {
			status[pp.FilePropName] = http.StatusForbidden
			protected = true
		}
	}
	if protected {
		for _, pp := range patch {
			if status[pp.FilePropName] == 0 {
				status[pp.FilePropName] = http.StatusFailedDependency
			}
		}
	} else {
		err := rq.fs.SetProps(rq.ctx, rq.p(), patch, tokens)
		code := http.StatusOK
		switch {
		case errors.Is(err, store.ErrOverQuota):
			code = http.StatusInsufficientStorage
		case err != nil:
			rq.fail(err)
			return
		}
		for _, pp := range patch {
			status[pp.FilePropName] = code
		}
	}
	x := newXW(rq.w, http.StatusMultiStatus)
	x.raw(`<D:multistatus xmlns:D="DAV:"><D:response>`)
	fi, _ := rq.fs.Stat(rq.ctx, rq.p())
	x.elem("href", rq.h.href(rq.segs, fi.Dir))
	seen := map[propName]bool{}
	for _, pp := range patch {
		if seen[pp.FilePropName] {
			continue
		}
		seen[pp.FilePropName] = true
		x.raw("<D:propstat><D:prop>")
		x.prop(pp.Space, pp.Local, nil)
		x.raw("</D:prop>")
		x.elem("status", statusLine(status[pp.FilePropName]))
		if status[pp.FilePropName] == http.StatusForbidden {
			x.raw("<D:error><D:cannot-modify-protected-property/></D:error>")
		}
		x.raw("</D:propstat>")
	}
	x.raw("</D:response></D:multistatus>\n")
	x.flush()
}
