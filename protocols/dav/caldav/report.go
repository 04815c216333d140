package caldav

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	ical "github.com/emersion/go-ical"

	"kreide/store"
)

// loadChunk is how many objects are decrypted per read transaction when a
// report needs content; the response is written between chunks, outside
// the transaction.
const loadChunk = 256

// report dispatches REPORT by its body's root element.
func (rq *request) report(w http.ResponseWriter, res *resource) error {
	body, err := readXML(rq.r)
	if err != nil {
		return badRequest("REPORT body: %v", err)
	}
	if body == nil {
		return badRequest("REPORT without body")
	}
	switch {
	case body.is(nsCal, "calendar-query"):
		return rq.calendarQuery(w, res, body)
	case body.is(nsCal, "calendar-multiget"), body.is(nsCard, "addressbook-multiget"):
		return rq.multiget(w, res, body)
	case body.is(nsCard, "addressbook-query"):
		return rq.addressbookQuery(w, res, body)
	case body.is(nsDAV, "sync-collection"):
		return rq.syncCollection(w, res, body)
	case body.is(nsCal, "free-busy-query"):
		return rq.freeBusy(w, res, body)
	}
	return precondition(http.StatusForbidden, nsDAV, "supported-report", body.name.Local+" is not supported")
}

// collectionFor checks that a report targets an existing collection (or
// object) of the right kind.
func collectionFor(res *resource, k store.CollectionKind) error {
	if res.kind != resCollection && res.kind != resObject {
		return precondition(http.StatusForbidden, nsDAV, "supported-report", "this report works on collections")
	}
	if res.coll == nil {
		return &davError{code: http.StatusNotFound, msg: "no such collection"}
	}
	if res.ckind != k {
		return precondition(http.StatusForbidden, nsDAV, "supported-report", "wrong kind of collection")
	}
	return nil
}

// withData loads content for objs that lack it, in chunks, and emits each.
func (rq *request) withData(coll uint32, objs []*store.Object, emit func(*store.Object) error) error {
	for len(objs) > 0 {
		n := min(len(objs), loadChunk)
		names := make([]string, n)
		for i, o := range objs[:n] {
			names[i] = o.Name
		}
		var loaded []*store.Object
		err := rq.a.GetObjects(rq.ctx, coll, names, store.ObjectOptions{Data: true}, func(o *store.Object) error {
			loaded = append(loaded, o)
			return nil
		})
		if err != nil {
			return err
		}
		for _, o := range loaded {
			if err := emit(o); err != nil {
				return err
			}
		}
		objs = objs[n:]
	}
	return nil
}

// floatZone is the zone for floating times: the query's CALDAV:timezone,
// else the calendar's calendar-timezone property, else UTC.
func (rq *request) floatZone(body *node, c *store.Collection) *time.Location {
	vtz := ""
	if tz := body.child(nsCal, "timezone"); tz != nil {
		vtz = tz.text
	} else if v, ok := c.Dead[propKey(name(nsCal, "calendar-timezone"))]; ok {
		if n, err := parseXML([]byte("<x>" + v + "</x>")); err == nil {
			vtz = n.text
		}
	}
	if vtz == "" {
		return time.UTC
	}
	cal, err := decodeCalendar([]byte(vtz))
	if err != nil {
		return time.UTC
	}
	for _, c := range cal.Children {
		if c.Name == ical.CompTimezone {
			if id, err := c.Props.Text(ical.PropTimezoneID); err == nil {
				if loc := rq.zones.load(id); loc != nil {
					return loc
				}
			}
		}
	}
	return time.UTC
}

// calendarQuery answers CALDAV:calendar-query (RFC 4791, section 7.8).
// The store's sealed summaries pick candidates by component and time
// range; an exact summary (a single event in absolute time) decides
// without decrypting the event; recurring, floating and otherwise filtered
// objects are parsed and their recurrences expanded.
func (rq *request) calendarQuery(w http.ResponseWriter, res *resource, body *node) error {
	if err := collectionFor(res, store.KindCalendar); err != nil {
		return err
	}
	fn := body.child(nsCal, "filter")
	if fn == nil || fn.child(nsCal, "comp-filter") == nil {
		return invalidFilter("calendar-query needs a filter with a comp-filter")
	}
	cf, derr := parseCompFilter(fn.child(nsCal, "comp-filter"))
	if derr != nil {
		return derr
	}
	pr := parsePropRequest(body)
	dataReq, derr := parseCalDataReq(pr.elems[pCalData])
	if derr != nil {
		return derr
	}
	float := rq.floatZone(body, res.coll)

	var cands []*store.Object
	collect := func(o *store.Object) error {
		cands = append(cands, o)
		return nil
	}
	var err error
	if res.kind == resObject {
		err = rq.a.GetObjects(rq.ctx, res.coll.ID, []string{res.name}, store.ObjectOptions{}, collect)
	} else {
		// Floating times are indexed with slack, so the store's answer is a
		// superset for any query zone.
		comp, start, end := cf.candidate()
		err = rq.a.ObjectsInRange(rq.ctx, res.coll.ID, store.RangeQuery{Component: comp, Start: start, End: end}, store.ObjectOptions{}, collect)
	}
	if err != nil {
		return err
	}
	simple, isSimple := cf.simple()
	var decided, parse []*store.Object
	for _, o := range cands {
		switch {
		case isSimple && o.Component != simple.name:
		case isSimple && !simple.hasRange:
			decided = append(decided, o)
		case isSimple && o.Summary != nil && o.Summary.Exact:
			if exactOverlap(o.Summary, simple.start, simple.end) {
				decided = append(decided, o)
			}
		default:
			parse = append(parse, o)
		}
	}
	ms := newMSWriter(w)
	emit := func(o *store.Object) error {
		var data propFunc
		if dataReq != nil {
			data = func() (string, error) { return esc(string(dataReq.render(o.Data, &rq.zones, float))), nil }
		}
		props, err := rq.objEval(&pr, store.KindCalendar, o, data)
		if err != nil {
			return err
		}
		ms.response(rq.objHref(res.ckind, res.slug, o.Name), props)
		return nil
	}
	// Decided objects need no parsing; with calendar-data they still need
	// their content, loaded with the others.
	isDecided := make(map[string]bool, len(decided))
	for _, o := range decided {
		if dataReq == nil {
			if err := emit(o); err != nil {
				return err
			}
			continue
		}
		isDecided[o.Name] = true
		parse = append(parse, o)
	}
	err = rq.withData(res.coll.ID, parse, func(o *store.Object) error {
		if !isDecided[o.Name] {
			cal, err := decodeCalendar(o.Data)
			if err != nil || !matchCalendar(&cf, newParser(&rq.zones, float, cal), cal) {
				return nil
			}
		}
		return emit(o)
	})
	if err != nil {
		return err
	}
	return ms.end("")
}

// multiget answers calendar-multiget and addressbook-multiget (RFC 4791
// 7.9, RFC 6352 8.7): the named objects, each under the href the client
// sent.
func (rq *request) multiget(w http.ResponseWriter, res *resource, body *node) error {
	kind := store.KindCalendar
	if body.is(nsCard, "addressbook-multiget") {
		kind = store.KindAddressBook
	}
	if res.kind != resCollection && res.kind != resObject && res.kind != resHome {
		return precondition(http.StatusForbidden, nsDAV, "supported-report", "multiget works on collections")
	}
	pr := parsePropRequest(body)
	dataNode := pr.elems[pCalData]
	if kind == store.KindAddressBook {
		dataNode = pr.elems[pAddressData]
	}
	var calReq *calDataReq
	var cardReq *cardDataReq
	if kind == store.KindCalendar {
		var derr *davError
		if calReq, derr = parseCalDataReq(dataNode); derr != nil {
			return derr
		}
	} else {
		cardReq = parseCardDataReq(dataNode)
	}
	float := time.UTC
	ms := newMSWriter(w)
	for _, hn := range body.all(nsDAV, "href") {
		raw := strings.TrimSpace(hn.text)
		p, err := hrefPath(raw)
		if err != nil {
			ms.status(raw, http.StatusBadRequest, "")
			continue
		}
		target, err := rq.resolve(p)
		if err != nil {
			var de *davError
			if errors.As(err, &de) {
				ms.status(raw, de.code, "")
				continue
			}
			return err
		}
		if target.kind != resObject || target.ckind != kind || target.coll == nil {
			ms.status(raw, http.StatusNotFound, "")
			continue
		}
		var obj *store.Object
		err = rq.a.GetObjects(rq.ctx, target.coll.ID, []string{target.name}, store.ObjectOptions{Data: dataNode != nil}, func(o *store.Object) error {
			obj = o
			return nil
		})
		if err != nil {
			return err
		}
		if obj == nil {
			ms.status(raw, http.StatusNotFound, "")
			continue
		}
		var data propFunc
		if dataNode != nil {
			o := obj
			if kind == store.KindCalendar {
				data = func() (string, error) { return esc(string(calReq.render(o.Data, &rq.zones, float))), nil }
			} else {
				data = func() (string, error) { return esc(string(cardReq.render(o.Data))), nil }
			}
		}
		props, err := rq.objEval(&pr, kind, obj, data)
		if err != nil {
			return err
		}
		ms.response(raw, props)
	}
	return ms.end("")
}

// Sync tokens are URIs (RFC 6578, section 3.2) naming the collection and
// its modseq, so a token of a deleted and re-created collection is refused.
const syncTokenPrefix = "http://kreide.org/ns/sync/"

func syncToken(coll uint32, modseq uint64) string {
	return fmt.Sprintf("%s%d-%d", syncTokenPrefix, coll, modseq)
}

func parseSyncToken(s string) (coll uint32, modseq uint64, ok bool) {
	rest, found := strings.CutPrefix(s, syncTokenPrefix)
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(rest, "-")
	if !found {
		return 0, 0, false
	}
	c, err1 := strconv.ParseUint(a, 10, 32)
	m, err2 := strconv.ParseUint(b, 10, 64)
	return uint32(c), m, err1 == nil && err2 == nil
}

// syncCollection answers DAV:sync-collection (RFC 6578): the members
// changed since the token, and the deleted ones as 404s. DAV:limit is not
// honoured: all changes come in one response.
func (rq *request) syncCollection(w http.ResponseWriter, res *resource, body *node) error {
	if res.kind != resCollection || res.coll == nil {
		if res.kind == resCollection {
			return &davError{code: http.StatusNotFound, msg: "no such collection"}
		}
		return precondition(http.StatusForbidden, nsDAV, "supported-report", "sync-collection works on calendars and address books")
	}
	if lvl := body.child(nsDAV, "sync-level"); lvl != nil {
		if l := strings.TrimSpace(lvl.text); l != "1" && l != "infinite" {
			return badRequest("sync-level must be 1")
		}
	}
	invalid := precondition(http.StatusForbidden, nsDAV, "valid-sync-token", "unknown or stale sync token")
	var since uint64
	if tok := strings.TrimSpace(body.child(nsDAV, "sync-token").textOr("")); tok != "" {
		coll, modseq, ok := parseSyncToken(tok)
		if !ok || coll != res.coll.ID {
			return invalid
		}
		since = modseq
	}
	sr, err := rq.a.SyncChanges(rq.ctx, res.coll.ID, since)
	if errors.Is(err, store.ErrStaleSyncToken) {
		return invalid
	}
	if err != nil {
		return err
	}
	pr := parsePropRequest(body)
	dataNode := pr.elems[pCalData]
	if res.ckind == store.KindAddressBook {
		dataNode = pr.elems[pAddressData]
	}
	calReq, derr := parseCalDataReq(pr.elems[pCalData])
	if derr != nil {
		return derr
	}
	cardReq := parseCardDataReq(pr.elems[pAddressData])
	ms := newMSWriter(w)
	emit := func(o *store.Object) error {
		var data propFunc
		if dataNode != nil {
			if res.ckind == store.KindCalendar {
				data = func() (string, error) { return esc(string(calReq.render(o.Data, &rq.zones, time.UTC))), nil }
			} else {
				data = func() (string, error) { return esc(string(cardReq.render(o.Data))), nil }
			}
		}
		props, err := rq.objEval(&pr, res.ckind, o, data)
		if err != nil {
			return err
		}
		ms.response(rq.objHref(res.ckind, res.slug, o.Name), props)
		return nil
	}
	if dataNode != nil {
		err = rq.withData(res.coll.ID, sr.Updated, emit)
	} else {
		for _, o := range sr.Updated {
			if err = emit(o); err != nil {
				break
			}
		}
	}
	if err != nil {
		return err
	}
	for _, name := range sr.Deleted {
		ms.status(rq.objHref(res.ckind, res.slug, name), http.StatusNotFound, "")
	}
	return ms.end(syncToken(res.coll.ID, sr.ModSeq))
}

func (n *node) textOr(def string) string {
	if n == nil {
		return def
	}
	return n.text
}
