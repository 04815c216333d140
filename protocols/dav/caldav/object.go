package caldav

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	vcard "github.com/emersion/go-vcard"

	"kreide/store"
)

// get answers GET and HEAD on an object with its stored bytes.
func (rq *request) get(w http.ResponseWriter, res *resource) error {
	if res.kind != resObject {
		w.Header().Set("Allow", allowed(res))
		return &davError{code: http.StatusMethodNotAllowed, msg: "GET is for calendar objects and contacts"}
	}
	if res.coll == nil {
		return &davError{code: http.StatusNotFound, msg: "no such collection"}
	}
	o, err := rq.a.GetObject(rq.ctx, res.coll.ID, res.name)
	if err != nil {
		return err
	}
	etag := quoteETag(o.ETag)
	w.Header().Set("ETag", etag)
	w.Header().Set("Last-Modified", o.ModTime.UTC().Format(http.TimeFormat))
	if inm := parseETags(rq.r.Header.Get("If-None-Match")); inm != nil && matchAny(inm, o.ETag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	ctype := "text/vcard; charset=utf-8"
	if res.ckind == store.KindCalendar {
		ctype = "text/calendar; charset=utf-8"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(o.Data)))
	w.WriteHeader(http.StatusOK)
	if rq.r.Method != http.MethodHead {
		w.Write(o.Data)
	}
	return nil
}

// parseETags parses If-Match / If-None-Match: nil when absent, ["*"] for
// any, else the entity tags without quotes (weak ones compare as strong:
// kreide only hands out strong tags).
func parseETags(h string) []string {
	h = strings.TrimSpace(h)
	if h == "" {
		return nil
	}
	if h == "*" {
		return []string{"*"}
	}
	var out []string
	for _, t := range strings.Split(h, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		t = strings.Trim(t, `"`)
		if t != "" {
			out = append(out, t)
		}
	}
	if out == nil {
		return []string{"\x00never"}
	}
	return out
}

func matchAny(list []string, etag string) bool {
	for _, t := range list {
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// put stores a calendar object or contact (RFC 4791, section 5.3.2; RFC
// 6352, section 6.3.2). The content is validated before anything is
// stored and kept byte for byte, so the ETag is that of what the client
// sent.
func (rq *request) put(w http.ResponseWriter, res *resource) error {
	if res.kind != resObject {
		w.Header().Set("Allow", allowed(res))
		return &davError{code: http.StatusMethodNotAllowed, msg: "PUT is for calendar objects and contacts"}
	}
	if res.coll == nil {
		return &davError{code: http.StatusConflict, msg: "no such collection"}
	}
	ns := nsCal
	if res.ckind == store.KindAddressBook {
		ns = nsCard
	}
	if rq.r.ContentLength > rq.maxSize {
		return precondition(http.StatusRequestEntityTooLarge, ns, "max-resource-size", "resource too large")
	}
	data, err := io.ReadAll(io.LimitReader(rq.r.Body, rq.maxSize+1))
	if err != nil {
		return badRequest("reading body: %v", err)
	}
	if int64(len(data)) > rq.maxSize {
		return precondition(http.StatusRequestEntityTooLarge, ns, "max-resource-size", "resource too large")
	}
	opts := store.PutObjectOptions{IfMatch: parseETags(rq.r.Header.Get("If-Match")), IfNoneMatch: parseETags(rq.r.Header.Get("If-None-Match"))}
	if res.ckind == store.KindCalendar {
		if !contentTypeIs(rq.r.Header.Get("Content-Type"), "text/calendar") {
			return precondition(http.StatusUnsupportedMediaType, nsCal, "supported-calendar-data", "calendar objects must be text/calendar")
		}
		obj, derr := parseCalObject(data, &rq.zones)
		if derr != nil {
			return derr
		}
		if !res.coll.Accepts(obj.comp) {
			return precondition(http.StatusForbidden, nsCal, "supported-calendar-component", "this calendar does not take "+obj.comp)
		}
		opts.Summary = obj.summary(&rq.zones)
	} else {
		if !contentTypeIs(rq.r.Header.Get("Content-Type"), "text/vcard", "text/x-vcard", "text/directory") {
			return precondition(http.StatusUnsupportedMediaType, nsCard, "supported-address-data", "contacts must be text/vcard")
		}
		card, err := parseVCard(data)
		if err != nil {
			return precondition(http.StatusBadRequest, nsCard, "valid-address-data", "vCard: "+err.Error())
		}
		opts.Summary = store.ObjectSummary{UID: card.Value(vcard.FieldUID)}
	}
	o, created, err := rq.a.PutObject(rq.ctx, res.coll.ID, res.name, data, opts)
	var conflict *store.UIDConflictError
	if errors.As(err, &conflict) {
		e := precondition(http.StatusConflict, ns, "no-uid-conflict", "the UID is used by another resource")
		e.inner = href(rq.objHref(res.ckind, res.slug, conflict.Name))
		return e
	}
	if err != nil {
		return err
	}
	w.Header().Set("ETag", quoteETag(o.ETag))
	w.Header().Set("Last-Modified", o.ModTime.UTC().Format(http.TimeFormat))
	if created {
		w.Header().Set("Location", rq.objHref(res.ckind, res.slug, res.name))
		w.WriteHeader(http.StatusCreated)
	} else {
		w.WriteHeader(http.StatusNoContent)
	}
	return nil
}

// contentTypeIs accepts a missing Content-Type (some clients send none) or
// one of the given media types.
func contentTypeIs(h string, types ...string) bool {
	if strings.TrimSpace(h) == "" {
		return true
	}
	t, _, err := mime.ParseMediaType(h)
	if err != nil {
		return false
	}
	for _, want := range types {
		if strings.EqualFold(t, want) {
			return true
		}
	}
	return false
}

// parseVCard checks a contact: exactly one vCard, version 3.0 or 4.0 (or
// 2.1), with a formatted name or a name.
func parseVCard(data []byte) (card vcard.Card, err error) {
	defer guard(&err)
	if !utf8.Valid(data) {
		return nil, errors.New("not UTF-8")
	}
	if err := checkNesting(data); err != nil {
		return nil, err
	}
	dec := vcard.NewDecoder(bytes.NewReader(data))
	card, err = dec.Decode()
	if err == io.EOF {
		return nil, errors.New("no vCard")
	}
	if err != nil {
		return nil, err
	}
	if _, err := dec.Decode(); err != io.EOF {
		return nil, errors.New("more than one vCard, or data after it")
	}
	switch card.Value(vcard.FieldVersion) {
	case "2.1", "3.0", "4.0":
	default:
		return nil, errors.New("VERSION must be 3.0 or 4.0")
	}
	if card.Value(vcard.FieldFormattedName) == "" && card.Get(vcard.FieldName) == nil {
		return nil, errors.New("no FN or N")
	}
	return card, nil
}

// delete removes an object or a whole collection.
func (rq *request) delete(w http.ResponseWriter, res *resource) error {
	switch res.kind {
	case resObject:
		if res.coll == nil {
			return &davError{code: http.StatusNotFound, msg: "no such collection"}
		}
		if err := rq.a.DeleteObject(rq.ctx, res.coll.ID, res.name, parseETags(rq.r.Header.Get("If-Match"))); err != nil {
			return err
		}
	case resCollection:
		if res.coll == nil {
			return &davError{code: http.StatusNotFound, msg: "no such collection"}
		}
		if err := rq.a.DeleteCollection(rq.ctx, res.coll.ID); err != nil {
			return err
		}
	default:
		return &davError{code: http.StatusForbidden, msg: "this resource cannot be deleted"}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
