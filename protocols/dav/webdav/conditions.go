package webdav

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The If header (RFC 4918 section 10.4):
//
//	If = "If" ":" ( 1*No-tag-list | 1*Tagged-list )
//	No-tag-list = List
//	Tagged-list = Resource-Tag 1*List
//	List = "(" 1*Condition ")"
//	Condition = ["Not"] (State-token | "[" entity-tag "]")
//
// An untagged list applies to the Request-URI, a tagged one to the resource
// its tag names. The header is true if any list is; a list is true if all
// its conditions are. A state token matches a resource if it is the token
// of a lock that covers it. Every state token in the header (not under Not)
// counts as submitted, which is what the store checks write locks against.

type ifCond struct {
	not   bool
	token string // a state token (Coded-URL without the brackets), or
	etag  string // an entity tag, as written
}

type ifList struct {
	tag   string // resource tag; "" for an untagged list
	conds []ifCond
}

const maxIfConditions = 256

var errIfSyntax = errors.New("malformed If header")

func parseIf(s string) ([]ifList, error) {
	var out []ifList
	tagged, untagged := false, false
	tag := ""
	n := 0
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			break
		}
		switch s[0] {
		case '<':
			end := strings.IndexByte(s, '>')
			if end < 0 {
				return nil, errIfSyntax
			}
			tag, s, tagged = s[1:end], s[end+1:], true
			continue
		case '(':
		default:
			return nil, errIfSyntax
		}
		if tag == "" {
			untagged = true
		}
		if tagged && untagged {
			return nil, errIfSyntax
		}
		s = s[1:]
		l := ifList{tag: tag}
		for {
			s = strings.TrimLeft(s, " \t")
			if s == "" {
				return nil, errIfSyntax
			}
			if s[0] == ')' {
				s = s[1:]
				break
			}
			var c ifCond
			if len(s) >= 3 && strings.EqualFold(s[:3], "not") {
				c.not, s = true, strings.TrimLeft(s[3:], " \t")
			}
			if s == "" {
				return nil, errIfSyntax
			}
			switch s[0] {
			case '<':
				end := strings.IndexByte(s, '>')
				if end < 0 {
					return nil, errIfSyntax
				}
				c.token, s = s[1:end], s[end+1:]
			case '[':
				et, rest, ok := cutEntityTag(s[1:])
				if !ok || !strings.HasPrefix(rest, "]") {
					return nil, errIfSyntax
				}
				c.etag, s = et, rest[1:]
			default:
				return nil, errIfSyntax
			}
			if n++; n > maxIfConditions {
				return nil, errIfSyntax
			}
			l.conds = append(l.conds, c)
		}
		if len(l.conds) == 0 {
			return nil, errIfSyntax
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, errIfSyntax
	}
	return out, nil
}

// cutEntityTag reads an entity tag (W/"..." or "...") from the start of s.
func cutEntityTag(s string) (etag, rest string, ok bool) {
	start := 0
	if strings.HasPrefix(s, "W/") {
		start = 2
	}
	if len(s) <= start || s[start] != '"' {
		return "", "", false
	}
	end := strings.IndexByte(s[start+1:], '"')
	if end < 0 {
		return "", "", false
	}
	end += start + 2
	return s[:end], s[end:], true
}

// etagMatches compares an entity tag as a client wrote it with ours (the
// weak comparison of RFC 9110 section 8.8.3.2: our tags are all strong).
func etagMatches(written, ours string) bool {
	return strings.TrimPrefix(strings.TrimSpace(written), "W/") == `"`+ours+`"`
}

// ifState is what the If header can test about a resource.
type ifState struct {
	exists bool
	etag   string
	tokens []string // locks covering it (or, if it does not exist, its parent)
}

func (rq *request) stateOf(segs []string) ifState {
	p := strings.Join(segs, "/")
	var st ifState
	fi, err := rq.fs.Stat(rq.ctx, p)
	if err == nil {
		st.exists, st.etag = true, fi.ETag
	} else if len(segs) > 0 {
		p = strings.Join(segs[:len(segs)-1], "/")
	}
	ls, _ := rq.fs.Locks(rq.ctx, p)
	for _, l := range ls {
		st.tokens = append(st.tokens, l.Token)
	}
	return st
}

// tagSegments maps a resource tag (absolute URL or path) to our names.
func (rq *request) tagSegments(tag string) ([]string, bool) {
	u, err := url.Parse(tag)
	if err != nil || !sameHost(u, rq.r.Host) {
		return nil, false
	}
	segs, err := rq.h.segments(u.EscapedPath())
	return segs, err == nil
}

// conditions evaluates the If header and, with httpConds, If-Match,
// If-None-Match and If-Unmodified-Since against the Request-URI. It returns
// the submitted lock tokens; when a condition fails it has answered (412,
// or 400 for a malformed header) and ok is false.
func (rq *request) conditions(httpConds bool) (tokens []string, ok bool) {
	if httpConds && !rq.httpConditions() {
		http.Error(rq.w, "precondition failed", http.StatusPreconditionFailed)
		return nil, false
	}
	hdr := rq.r.Header.Get("If")
	if hdr == "" {
		return nil, true
	}
	lists, err := parseIf(hdr)
	if err != nil {
		http.Error(rq.w, err.Error(), http.StatusBadRequest)
		return nil, false
	}
	states := map[string]ifState{}
	state := func(tag string) (ifState, bool) {
		segs := rq.segs
		if tag != "" {
			var ok bool
			if segs, ok = rq.tagSegments(tag); !ok {
				return ifState{}, false
			}
		}
		key := strings.Join(segs, "/")
		st, ok := states[key]
		if !ok {
			st = rq.stateOf(segs)
			states[key] = st
		}
		return st, true
	}
	someTrue := false
	for _, l := range lists {
		st, known := state(l.tag)
		all := true
		for _, c := range l.conds {
			var match bool
			if c.token != "" {
				match = known && slices.Contains(st.tokens, c.token)
				if !c.not {
					tokens = append(tokens, c.token)
				}
			} else {
				match = known && st.exists && etagMatches(c.etag, st.etag)
			}
			if match == c.not {
				all = false
			}
		}
		someTrue = someTrue || all
	}
	if !someTrue {
		http.Error(rq.w, "precondition failed", http.StatusPreconditionFailed)
		return nil, false
	}
	return tokens, true
}

// httpConditions checks If-Match, If-None-Match and If-Unmodified-Since
// (RFC 9110 section 13) for methods other than GET, HEAD and PUT.
func (rq *request) httpConditions() bool {
	im, inm, ius := rq.r.Header.Get("If-Match"), rq.r.Header.Get("If-None-Match"), rq.r.Header.Get("If-Unmodified-Since")
	if im == "" && inm == "" && ius == "" {
		return true
	}
	fi, err := rq.fs.Stat(rq.ctx, rq.p())
	exists := err == nil
	if im != "" && !(exists && (strings.TrimSpace(im) == "*" || listHasETag(im, fi.ETag))) {
		return false
	}
	if inm != "" && exists && (strings.TrimSpace(inm) == "*" || listHasETag(inm, fi.ETag)) {
		return false
	}
	if t, err := http.ParseTime(ius); ius != "" && err == nil && exists && fi.Modified.Truncate(time.Second).After(t) {
		return false
	}
	return true
}

func listHasETag(list, ours string) bool {
	for e := range strings.SplitSeq(list, ",") {
		if etagMatches(e, ours) {
			return true
		}
	}
	return false
}
