package webdav

import (
	"errors"
	"fmt"
	"html"
	"net/http"

	"kreide/store"
)

// get serves GET and HEAD. Files go through http.ServeContent, which does
// single and multiple Ranges (206), If-Range, ETag and date conditions
// (304, 412); the reader decrypts only the chunks a range needs. A folder
// gets a small HTML index for browsers.
func (rq *request) get() {
	if _, ok := rq.conditions(false); !ok {
		return
	}
	r, fi, err := rq.fs.Open(rq.ctx, rq.p())
	if errors.Is(err, store.ErrFileIsFolder) {
		rq.index()
		return
	}
	if err != nil {
		rq.fail(err)
		return
	}
	defer r.Close()
	h := rq.w.Header()
	h.Set("ETag", `"`+fi.ETag+`"`)
	h.Set("Content-Type", contentType(fi))
	// User content on the server's origin: never let a browser run it.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox")
	http.ServeContent(rq.w, rq.r, fi.Name, fi.Modified, r)
}

// index lists a folder as HTML, without other platforms' scratch files.
func (rq *request) index() {
	fi, err := rq.fs.Stat(rq.ctx, rq.p())
	if err != nil {
		rq.fail(err)
		return
	}
	kids, err := rq.fs.ReadDir(rq.ctx, rq.p())
	if err != nil {
		rq.fail(err)
		return
	}
	h := rq.w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("ETag", `"`+fi.ETag+`"`)
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	if rq.r.Method == "HEAD" {
		return
	}
	title := html.EscapeString("/" + rq.p())
	fmt.Fprintf(rq.w, "<!doctype html>\n<meta charset=utf-8><title>%s</title>\n<h1>%s</h1>\n<ul>\n", title, title)
	if len(rq.segs) > 0 {
		fmt.Fprintf(rq.w, "<li><a href=\"%s\">..</a>\n", html.EscapeString(rq.h.href(rq.segs[:len(rq.segs)-1], true)))
	}
	for _, k := range kids {
		if rq.hidden(k.Name) {
			continue
		}
		name := k.Name
		if k.Dir {
			name += "/"
		}
		href := rq.h.href(append(rq.segs[:len(rq.segs):len(rq.segs)], k.Name), k.Dir)
		fmt.Fprintf(rq.w, "<li><a href=\"%s\">%s</a>\n", html.EscapeString(href), html.EscapeString(name))
	}
	fmt.Fprint(rq.w, "</ul>\n")
}
