// Package davauth authenticates HTTP requests for the DAV frontends (CalDAV,
// CardDAV, WebDAV) with HTTP Basic over TLS, and hands the unlocked account
// to the handler through the request context.
package davauth

import (
	"context"
	"errors"
	"net"
	"net/http"

	"kreide/store"
)

type ctxKey struct{}

// WithAccount returns ctx carrying the authenticated account.
func WithAccount(ctx context.Context, a *store.Account) context.Context {
	return context.WithValue(ctx, ctxKey{}, a)
}

// Account is the authenticated account of a request; nil if there is none.
func Account(ctx context.Context) *store.Account {
	a, _ := ctx.Value(ctxKey{}).(*store.Account)
	return a
}

// Options configure Middleware.
type Options struct {
	Dir *store.Directory
	// AllowPlaintext reports whether Basic credentials may be accepted on a
	// connection without TLS (kreide: loopback only). nil means never.
	AllowPlaintext func(remoteAddr string) bool
	// Realm is shown by clients in their password prompt.
	Realm string
}

// Middleware requires HTTP Basic authentication with the password or an app
// password of scope dav. Without TLS (and not allowed in plaintext) it
// answers 403 before reading credentials. The account is closed when the
// request ends.
func Middleware(o Options) func(http.Handler) http.Handler {
	realm := o.Realm
	if realm == "" {
		realm = "kreide"
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.TLS == nil && (o.AllowPlaintext == nil || !o.AllowPlaintext(r.RemoteAddr)) {
				http.Error(w, "TLS required", http.StatusForbidden)
				return
			}
			user, pass, ok := r.BasicAuth()
			if !ok {
				w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`", charset="UTF-8"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
			// The client's address lets Directory.Login slow down failed
			// logins per client, not only per login name.
			a, err := o.Dir.Login(store.WithRemoteHost(r.Context(), r.RemoteAddr), user, pass, store.ScopeDAV)
			if err != nil {
				if errors.Is(err, store.ErrAuthFailed) {
					w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`", charset="UTF-8"`)
					http.Error(w, "wrong user name or password", http.StatusUnauthorized)
					return
				}
				http.Error(w, "temporary failure", http.StatusServiceUnavailable)
				return
			}
			defer a.Close()
			next.ServeHTTP(w, r.WithContext(WithAccount(r.Context(), a)))
		})
	}
}

// IsLoopback reports whether a remote address ("host:port") is on loopback.
func IsLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
