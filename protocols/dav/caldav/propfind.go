package caldav

import (
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"

	"kreide/store"
)

func name(ns, local string) xml.Name { return xml.Name{Space: ns, Local: local} }

// Property names.
var (
	pResourceType     = name(nsDAV, "resourcetype")
	pDisplayName      = name(nsDAV, "displayname")
	pCurrentPrincipal = name(nsDAV, "current-user-principal")
	pPrincipalURL     = name(nsDAV, "principal-URL")
	pPrincipalColl    = name(nsDAV, "principal-collection-set")
	pOwner            = name(nsDAV, "owner")
	pPrivileges       = name(nsDAV, "current-user-privilege-set")
	pReportSet        = name(nsDAV, "supported-report-set")
	pSyncToken        = name(nsDAV, "sync-token")
	pETag             = name(nsDAV, "getetag")
	pContentType      = name(nsDAV, "getcontenttype")
	pContentLength    = name(nsDAV, "getcontentlength")
	pLastModified     = name(nsDAV, "getlastmodified")
	pQuotaAvail       = name(nsDAV, "quota-available-bytes")
	pQuotaUsed        = name(nsDAV, "quota-used-bytes")
	pCalHomeSet       = name(nsCal, "calendar-home-set")
	pCalUserAddr      = name(nsCal, "calendar-user-address-set")
	pCalUserType      = name(nsCal, "calendar-user-type")
	pCalDescription   = name(nsCal, "calendar-description")
	pCalComponents    = name(nsCal, "supported-calendar-component-set")
	pCalDataTypes     = name(nsCal, "supported-calendar-data")
	pCalMaxSize       = name(nsCal, "max-resource-size")
	pCalData          = name(nsCal, "calendar-data")
	pCardHomeSet      = name(nsCard, "addressbook-home-set")
	pCardDescription  = name(nsCard, "addressbook-description")
	pCardDataTypes    = name(nsCard, "supported-address-data")
	pCardMaxSize      = name(nsCard, "max-resource-size")
	pAddressData      = name(nsCard, "address-data")
	pGetCTag          = name(nsCS, "getctag")
	pColor            = name(nsApple, "calendar-color")
	pOrder            = name(nsApple, "calendar-order")
)

// propFunc computes a property's content (XML). A nil func in a set means
// the property exists but is only returned when asked for by name.
type propFunc func() (string, error)

// propSet is one resource's properties: live ones in order, then dead
// ones. A few dozen at most: slices, no maps (one is built per object of a
// report).
type propSet struct {
	names []xml.Name
	funcs []propFunc
	// hidden are returned only when named (not by allprop), like
	// calendar-data and the quota properties (RFC 4331 says so).
	hidden []bool
}

func (ps *propSet) find(n xml.Name) int {
	for i, x := range ps.names {
		if x == n {
			return i
		}
	}
	return -1
}

func (ps *propSet) add(n xml.Name, f propFunc) {
	if i := ps.find(n); i >= 0 {
		ps.funcs[i] = f
		return
	}
	ps.names = append(ps.names, n)
	ps.funcs = append(ps.funcs, f)
	ps.hidden = append(ps.hidden, false)
}

func (ps *propSet) addHidden(n xml.Name, f propFunc) {
	ps.add(n, f)
	ps.hidden[ps.find(n)] = true
}

func text(s string) propFunc { return func() (string, error) { return esc(s), nil } }
func raw(s string) propFunc  { return func() (string, error) { return s, nil } }
func href(p string) string   { return "<d:href>" + esc(p) + "</d:href>" }

// propRequest is what a PROPFIND or REPORT asks for.
type propRequest struct {
	allprop  bool
	propname bool
	names    []xml.Name
	include  []xml.Name // allprop's include
	elems    map[xml.Name]*node
}

func parsePropRequest(root *node) propRequest {
	if root == nil || root.child(nsDAV, "allprop") != nil {
		pr := propRequest{allprop: true}
		if inc := root.child(nsDAV, "include"); inc != nil {
			for _, c := range inc.children {
				pr.include = append(pr.include, c.name)
			}
		}
		return pr
	}
	if root.child(nsDAV, "propname") != nil {
		return propRequest{propname: true}
	}
	pr := propRequest{elems: make(map[xml.Name]*node)}
	if p := root.child(nsDAV, "prop"); p != nil {
		for _, c := range p.children {
			pr.names = append(pr.names, c.name)
			pr.elems[c.name] = c
		}
	}
	return pr
}

func (pr *propRequest) wants(n xml.Name) bool {
	for _, x := range pr.names {
		if x == n {
			return true
		}
	}
	return false
}

// evaluate answers a request against a resource's properties.
func (pr *propRequest) evaluate(ps *propSet) ([]prop, error) {
	var out []prop
	switch {
	case pr.propname:
		for _, n := range ps.names {
			out = append(out, prop{name: n, status: http.StatusOK})
		}
	case pr.allprop:
		for i, n := range ps.names {
			if ps.hidden[i] && !containsName(pr.include, n) {
				continue
			}
			inner, err := ps.funcs[i]()
			if err != nil {
				return nil, err
			}
			out = append(out, prop{name: n, status: http.StatusOK, inner: inner})
		}
	default:
		for _, n := range pr.names {
			i := ps.find(n)
			if i < 0 {
				out = append(out, prop{name: n, status: http.StatusNotFound})
				continue
			}
			inner, err := ps.funcs[i]()
			if err != nil {
				return nil, err
			}
			out = append(out, prop{name: n, status: http.StatusOK, inner: inner})
		}
	}
	return out, nil
}

func containsName(l []xml.Name, n xml.Name) bool {
	for _, x := range l {
		if x == n {
			return true
		}
	}
	return false
}

// common adds the properties every resource has.
func (rq *request) common(ps *propSet) {
	ps.add(pCurrentPrincipal, raw(href(rq.principalHref())))
	ps.add(pPrincipalColl, raw(href(rq.prefix+"principals/")))
	ps.add(pOwner, raw(href(rq.principalHref())))
	ps.add(pPrivileges, raw(privileges))
}

// The owner may do everything with their own resources (RFC 3744).
var privileges = func() string {
	var b strings.Builder
	for _, p := range []string{"all", "read", "write", "write-properties", "write-content", "bind", "unbind", "read-current-user-privilege-set"} {
		b.WriteString("<d:privilege><d:" + p + "/></d:privilege>")
	}
	return b.String()
}()

func (rq *request) quotaProps(ps *propSet) {
	ps.addHidden(pQuotaUsed, func() (string, error) {
		used, _, err := rq.a.Used(rq.ctx)
		return strconv.FormatInt(used, 10), err
	})
	ps.addHidden(pQuotaAvail, func() (string, error) {
		used, quota, err := rq.a.Used(rq.ctx)
		return strconv.FormatInt(max(quota-used, 0), 10), err
	})
}

func (rq *request) rootProps() *propSet {
	ps := &propSet{}
	ps.add(pResourceType, raw("<d:collection/>"))
	rq.common(ps)
	return ps
}

func (rq *request) principalProps() *propSet {
	ps := &propSet{}
	ps.add(pResourceType, raw("<d:collection/><d:principal/>"))
	ps.add(pDisplayName, func() (string, error) {
		n, err := rq.a.DisplayName(rq.ctx)
		if err != nil || n == "" {
			n = rq.a.Login()
		}
		return esc(n), nil
	})
	ps.add(pPrincipalURL, raw(href(rq.principalHref())))
	ps.add(pCalHomeSet, raw(href(rq.homeHref(store.KindCalendar))))
	ps.add(pCardHomeSet, raw(href(rq.homeHref(store.KindAddressBook))))
	ps.add(pCalUserAddr, raw(href("mailto:"+rq.a.Login())))
	ps.add(pCalUserType, text("INDIVIDUAL"))
	rq.common(ps)
	return ps
}

func (rq *request) homeProps(k store.CollectionKind) *propSet {
	ps := &propSet{}
	ps.add(pResourceType, raw("<d:collection/>"))
	rq.common(ps)
	rq.quotaProps(ps)
	return ps
}

func (rq *request) collProps(c *store.Collection) *propSet {
	ps := &propSet{}
	if c.Kind == store.KindCalendar {
		ps.add(pResourceType, raw("<d:collection/><cal:calendar/>"))
	} else {
		ps.add(pResourceType, raw("<d:collection/><card:addressbook/>"))
	}
	if c.DisplayName != "" {
		ps.add(pDisplayName, text(c.DisplayName))
	}
	ps.add(pGetCTag, text(strconv.FormatUint(c.ModSeq, 10)))
	ps.add(pSyncToken, text(syncToken(c.ID, c.ModSeq)))
	if c.Color != "" {
		ps.add(pColor, text(c.Color))
	}
	if c.Order != "" {
		ps.add(pOrder, text(c.Order))
	}
	maxSize := text(strconv.FormatInt(rq.maxSize, 10))
	if c.Kind == store.KindCalendar {
		if c.Description != "" {
			ps.add(pCalDescription, text(c.Description))
		}
		var comps strings.Builder
		for _, comp := range c.Components {
			comps.WriteString(`<cal:comp name="` + comp + `"/>`)
		}
		ps.add(pCalComponents, raw(comps.String()))
		ps.add(pCalDataTypes, raw(`<cal:calendar-data content-type="text/calendar" version="2.0"/>`))
		ps.add(pCalMaxSize, maxSize)
		ps.add(pReportSet, raw(reportSet("cal:calendar-query", "cal:calendar-multiget", "cal:free-busy-query", "d:sync-collection")))
	} else {
		if c.Description != "" {
			ps.add(pCardDescription, text(c.Description))
		}
		ps.add(pCardDataTypes, raw(`<card:address-data-type content-type="text/vcard" version="3.0"/>`+
			`<card:address-data-type content-type="text/vcard" version="4.0"/>`))
		ps.add(pCardMaxSize, maxSize)
		ps.add(pReportSet, raw(reportSet("card:addressbook-query", "card:addressbook-multiget", "d:sync-collection")))
	}
	rq.common(ps)
	rq.quotaProps(ps)
	for k, v := range c.Dead {
		if n, ok := parsePropKey(k); ok && validLocal(n.Local) {
			ps.add(n, raw(v))
		}
	}
	return ps
}

func reportSet(reports ...string) string {
	var b strings.Builder
	for _, r := range reports {
		b.WriteString("<d:supported-report><d:report><" + r + "/></d:report></d:supported-report>")
	}
	return b.String()
}

// objEval answers a property request for an object. Reports and listings
// evaluate it for thousands of objects, so named properties are computed
// one by one without building the whole set.
func (rq *request) objEval(pr *propRequest, k store.CollectionKind, o *store.Object, data propFunc) ([]prop, error) {
	if pr.allprop || pr.propname {
		return pr.evaluate(rq.objProps(k, o, data))
	}
	out := make([]prop, 0, len(pr.names))
	for _, n := range pr.names {
		p := prop{name: n, status: http.StatusOK}
		switch n {
		case pETag:
			p.inner = esc(quoteETag(o.ETag))
		case pContentType:
			p.inner = objContentType(k, o)
		case pContentLength:
			p.inner = strconv.FormatInt(o.Size, 10)
		case pLastModified:
			p.inner = o.ModTime.UTC().Format(http.TimeFormat)
		case pResourceType:
		default:
			ps := rq.objProps(k, o, data)
			i := ps.find(n)
			if i < 0 {
				p.status = http.StatusNotFound
				break
			}
			inner, err := ps.funcs[i]()
			if err != nil {
				return nil, err
			}
			p.inner = inner
		}
		out = append(out, p)
	}
	return out, nil
}

func objContentType(k store.CollectionKind, o *store.Object) string {
	if k == store.KindCalendar {
		if o.Component != "" {
			return "text/calendar; charset=utf-8; component=" + strings.ToLower(o.Component)
		}
		return "text/calendar; charset=utf-8"
	}
	return "text/vcard; charset=utf-8"
}

// objProps are an object's properties; data (content) only when loaded.
func (rq *request) objProps(k store.CollectionKind, o *store.Object, data propFunc) *propSet {
	ps := &propSet{}
	ps.add(pResourceType, raw(""))
	ps.add(pETag, text(quoteETag(o.ETag)))
	ps.add(pContentType, text(objContentType(k, o)))
	ps.add(pContentLength, text(strconv.FormatInt(o.Size, 10)))
	ps.add(pLastModified, text(o.ModTime.UTC().Format(http.TimeFormat)))
	rq.common(ps)
	if data != nil {
		if k == store.KindCalendar {
			ps.addHidden(pCalData, data)
		} else {
			ps.addHidden(pAddressData, data)
		}
	}
	return ps
}

func quoteETag(e string) string { return `"` + e + `"` }

// propfind answers PROPFIND (RFC 4918, section 9.1) with Depth 0 or 1.
// Depth: infinity is refused (propfind-finite-depth); without a Depth
// header, 1 is assumed, as most servers do.
func (rq *request) propfind(w http.ResponseWriter, res *resource) error {
	depth := rq.r.Header.Get("Depth")
	switch depth {
	case "0", "1":
	case "":
		depth = "1"
	case "infinity":
		return precondition(http.StatusForbidden, nsDAV, "propfind-finite-depth", "Depth: infinity is not supported")
	default:
		return badRequest("bad Depth header")
	}
	body, err := readXML(rq.r)
	if err != nil {
		return badRequest("PROPFIND body: %v", err)
	}
	if body != nil && !body.is(nsDAV, "propfind") {
		return badRequest("expected DAV:propfind")
	}
	pr := parsePropRequest(body)
	if (res.kind == resCollection || res.kind == resObject) && res.coll == nil {
		return &davError{code: http.StatusNotFound, msg: "no such collection"}
	}
	var obj *store.Object
	if res.kind == resObject {
		// Only load content when asked for it.
		opts := store.ObjectOptions{Data: pr.wants(pCalData) || pr.wants(pAddressData)}
		err := rq.a.GetObjects(rq.ctx, res.coll.ID, []string{res.name}, opts, func(o *store.Object) error {
			obj = o
			return nil
		})
		if err != nil {
			return err
		}
		if obj == nil {
			return &davError{code: http.StatusNotFound, msg: "no such object"}
		}
	}
	ms := newMSWriter(w)
	emit := func(href string, ps *propSet) error {
		props, err := pr.evaluate(ps)
		if err != nil {
			return err
		}
		ms.response(href, props)
		return nil
	}
	children := depth == "1"
	switch res.kind {
	case resRoot:
		if err := emit(rq.prefix, rq.rootProps()); err != nil {
			return err
		}
		if children {
			if err := emit(rq.principalHref(), rq.principalProps()); err != nil {
				return err
			}
		}
	case resPrincipals:
		if err := emit(rq.prefix+"principals/", rq.rootProps()); err != nil {
			return err
		}
		if children {
			if err := emit(rq.principalHref(), rq.principalProps()); err != nil {
				return err
			}
		}
	case resPrincipal:
		if err := emit(rq.principalHref(), rq.principalProps()); err != nil {
			return err
		}
	case resHomes:
		if err := emit(rq.prefix+homeSegment(res.ckind)+"/", rq.rootProps()); err != nil {
			return err
		}
		if children {
			if err := emit(rq.homeHref(res.ckind), rq.homeProps(res.ckind)); err != nil {
				return err
			}
		}
	case resHome:
		if err := emit(rq.homeHref(res.ckind), rq.homeProps(res.ckind)); err != nil {
			return err
		}
		if children {
			colls, err := rq.a.Collections(rq.ctx, res.ckind)
			if err != nil {
				return err
			}
			for i := range colls {
				if err := emit(rq.collHref(res.ckind, colls[i].Slug), rq.collProps(&colls[i])); err != nil {
					return err
				}
			}
		}
	case resCollection:
		if err := emit(rq.collHref(res.ckind, res.slug), rq.collProps(res.coll)); err != nil {
			return err
		}
		if children {
			// Collect first: the network write happens outside the read
			// transaction, so a slow client never holds it open.
			opts := store.ObjectOptions{Data: pr.wants(pCalData) || pr.wants(pAddressData)}
			var objs []*store.Object
			err := rq.a.ListObjects(rq.ctx, res.coll.ID, opts, func(o *store.Object) error {
				objs = append(objs, o)
				return nil
			})
			if err != nil {
				return err
			}
			for _, o := range objs {
				props, err := rq.objEval(&pr, res.ckind, o, rawData(o))
				if err != nil {
					return err
				}
				ms.response(rq.objHref(res.ckind, res.slug, o.Name), props)
			}
		}
	case resObject:
		if err := emit(rq.objHref(res.ckind, res.slug, obj.Name), rq.objProps(res.ckind, obj, rawData(obj))); err != nil {
			return err
		}
	}
	return ms.end("")
}

// rawData returns an object's stored content as property content.
func rawData(o *store.Object) propFunc {
	if o.Data == nil {
		return nil
	}
	return func() (string, error) { return esc(string(o.Data)), nil }
}
