package dav

import (
	"io"
	"net/http"
	"time"
)

// defaultStallTimeout bounds how long one read of a request body or one
// write of a response may make no progress. http.Server's ReadTimeout and
// WriteTimeout bound a whole request instead, which would cut off a large
// upload or download on a slow school line; ReadHeaderTimeout and
// IdleTimeout cover the rest of a connection's life.
const defaultStallTimeout = 2 * time.Minute

// stallGuard renews the connection's read deadline before every body read
// and its write deadline before every response write, so a client that
// stops sending (or stops reading) in the middle of a request is dropped
// after d instead of holding a connection and a goroutine forever.
func stallGuard(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		// Deadlines belong to the connection: clear them for the next
		// request on it (the server sets its own header and idle ones).
		defer rc.SetWriteDeadline(time.Time{})
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &stallBody{ReadCloser: r.Body, rc: rc, d: d}
		}
		next.ServeHTTP(&stallWriter{ResponseWriter: w, rc: rc, d: d}, r)
	})
}

type stallBody struct {
	io.ReadCloser
	rc *http.ResponseController
	d  time.Duration
}

func (b *stallBody) Read(p []byte) (int, error) {
	b.rc.SetReadDeadline(time.Now().Add(b.d))
	return b.ReadCloser.Read(p)
}

type stallWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *stallWriter) Write(p []byte) (int, error) {
	w.rc.SetWriteDeadline(time.Now().Add(w.d))
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *stallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
