package caldav

import (
	"encoding/xml"
	"errors"
	"net/http"
	"strings"

	"kreide/store"
)

// protected are live properties clients cannot set (RFC 4918, 15; RFC
// 4791, 5.2; RFC 6352, 6.2; RFC 6578; RFC 4331).
var protected = map[xml.Name]bool{
	pResourceType: true, pGetCTag: true, pSyncToken: true, pETag: true, pContentType: true,
	pContentLength: true, pLastModified: true, pCalComponents: true, pCalDataTypes: true,
	pCalMaxSize: true, pCardDataTypes: true, pCardMaxSize: true, pCurrentPrincipal: true,
	pPrincipalURL: true, pPrincipalColl: true, pOwner: true, pPrivileges: true, pReportSet: true,
	pQuotaAvail: true, pQuotaUsed: true, pCalHomeSet: true, pCardHomeSet: true, pCalUserAddr: true,
	pCalData: true, pAddressData: true, name(nsDAV, "lockdiscovery"): true, name(nsDAV, "supportedlock"): true,
}

// propChange is one set or remove of a PROPPATCH, in document order.
type propChange struct {
	name   xml.Name
	remove bool
	n      *node
}

func propChanges(update *node, setOnly bool) []propChange {
	var out []propChange
	for _, op := range update.children {
		remove := op.is(nsDAV, "remove")
		if !op.is(nsDAV, "set") && (!remove || setOnly) {
			continue
		}
		for _, p := range op.all(nsDAV, "prop") {
			for _, c := range p.children {
				out = append(out, propChange{name: c.name, remove: remove, n: c})
			}
		}
	}
	return out
}

// apply adds one change to a patch; it returns false for a property that
// cannot be changed.
func apply(patch *store.CollectionPatch, ch propChange) bool {
	if protected[ch.name] || !validLocal(ch.name.Local) {
		return false
	}
	value := ""
	if !ch.remove {
		value = strings.TrimSpace(ch.n.text)
	}
	switch ch.name {
	case pDisplayName:
		patch.DisplayName = &value
	case pCalDescription, pCardDescription:
		patch.Description = &value
	case pColor:
		patch.Color = &value
	case pOrder:
		patch.Order = &value
	default:
		if patch.Dead == nil {
			patch.Dead = make(map[string]*string)
		}
		if ch.remove {
			patch.Dead[propKey(ch.name)] = nil
		} else {
			frag := ch.n.fragment()
			patch.Dead[propKey(ch.name)] = &frag
		}
	}
	return true
}

// proppatch changes a collection's properties, all or nothing (RFC 4918,
// section 9.2): display name, description, Apple's colour and order, and
// any dead property.
func (rq *request) proppatch(w http.ResponseWriter, res *resource) error {
	body, err := readXML(rq.r)
	if err != nil || body == nil || !body.is(nsDAV, "propertyupdate") {
		return badRequest("expected DAV:propertyupdate")
	}
	changes := propChanges(body, false)
	if res.kind != resCollection || res.coll == nil {
		if (res.kind == resCollection || res.kind == resObject) && res.coll == nil {
			return &davError{code: http.StatusNotFound, msg: "no such collection"}
		}
		return rq.patchResult(w, res, changes, func(propChange) int { return http.StatusForbidden })
	}
	var patch store.CollectionPatch
	failed := make(map[xml.Name]bool)
	for _, ch := range changes {
		if !apply(&patch, ch) {
			failed[ch.name] = true
		}
	}
	if len(failed) > 0 {
		return rq.patchResult(w, res, changes, func(ch propChange) int {
			if failed[ch.name] {
				return http.StatusForbidden
			}
			return http.StatusFailedDependency
		})
	}
	_, err = rq.a.UpdateCollection(rq.ctx, res.coll.ID, patch)
	if errors.Is(err, store.ErrInvalid) {
		return rq.patchResult(w, res, changes, func(propChange) int { return http.StatusInsufficientStorage })
	}
	if err != nil {
		return err
	}
	return rq.patchResult(w, res, changes, func(propChange) int { return http.StatusOK })
}

func (rq *request) patchResult(w http.ResponseWriter, res *resource, changes []propChange, status func(propChange) int) error {
	var props []prop
	for _, ch := range changes {
		props = append(props, prop{name: ch.name, status: status(ch)})
	}
	ms := newMSWriter(w)
	ms.response(rq.r.URL.EscapedPath(), props)
	return ms.end("")
}

// mkcol creates a calendar (MKCALENDAR, RFC 4791 5.3.1, or extended MKCOL,
// RFC 5689) or an address book (extended MKCOL, RFC 6352 6.3.1) with the
// properties in the body.
func (rq *request) mkcol(w http.ResponseWriter, res *resource) error {
	if res.kind != resCollection {
		return precondition(http.StatusForbidden, nsCal, "calendar-collection-location-ok",
			"collections are created in your calendar or address book home")
	}
	if res.coll != nil {
		return &davError{code: http.StatusMethodNotAllowed, msg: "the collection exists"}
	}
	mkcalendar := rq.r.Method == "MKCALENDAR"
	if mkcalendar && res.ckind != store.KindCalendar {
		return precondition(http.StatusForbidden, nsCal, "calendar-collection-location-ok", "calendars live under calendars/")
	}
	body, err := readXML(rq.r)
	if err != nil {
		return badRequest("body: %v", err)
	}
	if body != nil && !body.is(nsCal, "mkcalendar") && !body.is(nsDAV, "mkcol") {
		return &davError{code: http.StatusUnsupportedMediaType, msg: "expected mkcalendar or mkcol"}
	}
	c := store.Collection{Kind: res.ckind, Slug: res.slug}
	var patch store.CollectionPatch
	if body != nil {
		for _, ch := range propChanges(body, true) {
			switch ch.name {
			case pResourceType:
				if !resourceTypeOK(ch.n, res.ckind) {
					return precondition(http.StatusForbidden, nsDAV, "valid-resourcetype", "only calendars and address books can be made here")
				}
				continue
			case pCalComponents:
				if res.ckind == store.KindCalendar {
					for _, comp := range ch.n.all(nsCal, "comp") {
						n, _ := comp.attr("name")
						n = strings.ToUpper(n)
						if n != store.CompEvent && n != store.CompTodo && n != store.CompJournal {
							return precondition(http.StatusForbidden, nsCal, "supported-calendar-component", n+" is not supported")
						}
						c.Components = append(c.Components, n)
					}
					continue
				}
			}
			if !apply(&patch, ch) {
				return &davError{code: http.StatusForbidden, msg: "cannot set " + ch.name.Local}
			}
		}
	}
	// A plain MKCOL (no body) makes a collection of the home's kind: kreide
	// has no other collections there.
	for _, f := range []struct {
		dst *string
		src *string
	}{{&c.DisplayName, patch.DisplayName}, {&c.Description, patch.Description}, {&c.Color, patch.Color}, {&c.Order, patch.Order}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	for k, v := range patch.Dead {
		if v != nil {
			if c.Dead == nil {
				c.Dead = make(map[string]string)
			}
			c.Dead[k] = *v
		}
	}
	if _, err := rq.a.CreateCollection(rq.ctx, c); err != nil {
		return err
	}
	w.Header().Set("Location", rq.collHref(res.ckind, res.slug))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// resourceTypeOK checks an extended MKCOL's resourcetype against the home.
func resourceTypeOK(rt *node, k store.CollectionKind) bool {
	want := rt.child(nsCal, "calendar")
	if k == store.KindAddressBook {
		want = rt.child(nsCard, "addressbook")
	}
	if want == nil {
		return false
	}
	for _, c := range rt.children {
		if !c.is(nsDAV, "collection") && c != want {
			return false
		}
	}
	return true
}
