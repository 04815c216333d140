package caldav

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"strings"

	vcard "github.com/emersion/go-vcard"

	"kreide/store"
)

// cardFilter is a CARDDAV:filter (RFC 6352, section 10.5). go-webdav's
// carddav.Match compares only the first value of a property, case
// sensitively, and ignores param-filter; address book searches on phones
// need all three, so kreide evaluates filters itself.
type cardFilter struct {
	allOf bool
	props []cardPropFilter
}

type cardPropFilter struct {
	name       string
	allOf      bool
	notDefined bool
	texts      []cardTextMatch
	params     []cardParamFilter
}

type cardParamFilter struct {
	name       string
	notDefined bool
	text       *cardTextMatch
}

type cardTextMatch struct {
	text      string
	negate    bool
	octet     bool
	matchType string
}

func parseCardTextMatch(n *node) cardTextMatch {
	tm := cardTextMatch{text: n.text, matchType: "contains"}
	if v, _ := n.attr("negate-condition"); v == "yes" {
		tm.negate = true
	}
	if v, _ := n.attr("collation"); v == "i;octet" {
		tm.octet = true
	}
	if v, ok := n.attr("match-type"); ok {
		tm.matchType = v
	}
	return tm
}

func parseCardFilter(n *node) cardFilter {
	f := cardFilter{}
	if n == nil {
		return f
	}
	if v, _ := n.attr("test"); v == "allof" {
		f.allOf = true
	}
	for _, pn := range n.all(nsCard, "prop-filter") {
		pf := cardPropFilter{notDefined: pn.child(nsCard, "is-not-defined") != nil}
		pf.name, _ = pn.attr("name")
		pf.name = strings.ToUpper(pf.name)
		if v, _ := pn.attr("test"); v == "allof" {
			pf.allOf = true
		}
		for _, tn := range pn.all(nsCard, "text-match") {
			pf.texts = append(pf.texts, parseCardTextMatch(tn))
		}
		for _, an := range pn.all(nsCard, "param-filter") {
			pa := cardParamFilter{notDefined: an.child(nsCard, "is-not-defined") != nil}
			pa.name, _ = an.attr("name")
			if tn := an.child(nsCard, "text-match"); tn != nil {
				tm := parseCardTextMatch(tn)
				pa.text = &tm
			}
			pf.params = append(pf.params, pa)
		}
		f.props = append(f.props, pf)
	}
	return f
}

func (tm *cardTextMatch) match(v string) bool {
	t := tm.text
	if !tm.octet {
		v, t = strings.ToLower(v), strings.ToLower(t)
	}
	var ok bool
	switch tm.matchType {
	case "equals":
		ok = v == t
	case "starts-with":
		ok = strings.HasPrefix(v, t)
	case "ends-with":
		ok = strings.HasSuffix(v, t)
	default:
		ok = strings.Contains(v, t)
	}
	return ok != tm.negate
}

// match evaluates the filter; an empty filter matches every card.
func (f *cardFilter) match(card vcard.Card) bool {
	if len(f.props) == 0 {
		return true
	}
	for i := range f.props {
		ok := f.props[i].match(card)
		if ok && !f.allOf {
			return true
		}
		if !ok && f.allOf {
			return false
		}
	}
	return f.allOf
}

func (pf *cardPropFilter) match(card vcard.Card) bool {
	fields := card[pf.name]
	if pf.notDefined {
		return len(fields) == 0
	}
	if len(fields) == 0 {
		return false
	}
	return slices.ContainsFunc(fields, pf.matchField)
}

func (pf *cardPropFilter) matchField(f *vcard.Field) bool {
	for _, pa := range pf.params {
		vals := f.Params[strings.ToUpper(pa.name)]
		if pa.notDefined {
			if len(vals) > 0 {
				return false
			}
			continue
		}
		if len(vals) == 0 || (pa.text != nil && !slices.ContainsFunc(vals, pa.text.match)) {
			return false
		}
	}
	if len(pf.texts) == 0 {
		return true
	}
	for i := range pf.texts {
		ok := pf.texts[i].match(f.Value)
		if ok && !pf.allOf {
			return true
		}
		if !ok && pf.allOf {
			return false
		}
	}
	return pf.allOf
}

// cardDataReq is a CARDDAV:address-data element: nil props means the
// whole card.
type cardDataReq struct {
	props []string
}

func parseCardDataReq(n *node) *cardDataReq {
	if n == nil {
		return nil
	}
	req := &cardDataReq{}
	if n.child(nsCard, "allprop") != nil {
		return req
	}
	for _, p := range n.all(nsCard, "prop") {
		if v, ok := p.attr("name"); ok {
			req.props = append(req.props, strings.ToUpper(v))
		}
	}
	return req
}

// render returns the stored card, or only the asked-for properties (with
// BEGIN, END and VERSION), copying the original lines byte for byte.
func (r *cardDataReq) render(data []byte) []byte {
	if r == nil || len(r.props) == 0 {
		return data
	}
	var out bytes.Buffer
	keep := false
	for line := range bytes.Lines(data) {
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if keep {
				out.Write(line)
			}
			continue
		}
		n := line
		if i := bytes.IndexAny(n, ";:"); i >= 0 {
			n = n[:i]
		}
		if i := bytes.LastIndexByte(n, '.'); i >= 0 {
			n = n[i+1:]
		}
		name := strings.ToUpper(string(bytes.TrimSpace(n)))
		keep = name == "BEGIN" || name == "END" || name == "VERSION" || slices.Contains(r.props, name)
		if keep {
			out.Write(line)
		}
	}
	return out.Bytes()
}

// addressbookQuery answers CARDDAV:addressbook-query (RFC 6352, 8.6).
// Contacts are few per book: every card is decrypted and parsed.
func (rq *request) addressbookQuery(w http.ResponseWriter, res *resource, body *node) error {
	if err := collectionFor(res, store.KindAddressBook); err != nil {
		return err
	}
	filter := parseCardFilter(body.child(nsCard, "filter"))
	limit := -1
	if l := body.child(nsCard, "limit"); l != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(l.child(nsCard, "nresults").textOr(""))); err == nil && n >= 0 {
			limit = n
		}
	}
	pr := parsePropRequest(body)
	cardReq := parseCardDataReq(pr.elems[pAddressData])
	var objs []*store.Object
	collect := func(o *store.Object) error {
		objs = append(objs, o)
		return nil
	}
	var err error
	if res.kind == resObject {
		err = rq.a.GetObjects(rq.ctx, res.coll.ID, []string{res.name}, store.ObjectOptions{}, collect)
	} else {
		err = rq.a.ListObjects(rq.ctx, res.coll.ID, store.ObjectOptions{}, collect)
	}
	if err != nil {
		return err
	}
	ms := newMSWriter(w)
	count, truncated := 0, false
	err = rq.withData(res.coll.ID, objs, func(o *store.Object) error {
		if truncated {
			return nil
		}
		card, err := parseVCard(o.Data)
		if err != nil || !filter.match(card) {
			return nil
		}
		if limit >= 0 && count >= limit {
			truncated = true
			return nil
		}
		count++
		var data propFunc
		if cardReq != nil {
			data = func() (string, error) { return esc(string(cardReq.render(o.Data))), nil }
		}
		props, err := rq.objEval(&pr, store.KindAddressBook, o, data)
		if err != nil {
			return err
		}
		ms.response(rq.objHref(res.ckind, res.slug, o.Name), props)
		return nil
	})
	if err != nil {
		return err
	}
	if truncated {
		ms.status(rq.collHref(res.ckind, res.slug), http.StatusInsufficientStorage, "<d:number-of-matches-within-limits/>")
	}
	return ms.end("")
}
