package smtp

import (
	"context"
	"errors"
	"net"
	"time"
)

// Resolver is the DNS the server uses: SPF, DKIM and DMARC checks of inbound
// mail and MX lookups for outbound mail. *net.Resolver implements it (and so
// does blitiri.com.ar/go/spf's DNSResolver, which it matches); tests supply
// their own records. Missing names must be reported as a *net.DNSError with
// IsNotFound set, as net.Resolver does: SPF, DKIM and DMARC tell "no record"
// from "DNS failed" by it.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

var _ Resolver = (*net.Resolver)(nil)

// dnsTimeout bounds one DNS question.
const dnsTimeout = 20 * time.Second

// lookupTXTFunc adapts the resolver to go-msgauth's callback, which has no
// context: ctx bounds it, with a per-query timeout.
func lookupTXTFunc(ctx context.Context, r Resolver) func(string) ([]string, error) {
	return func(name string) ([]string, error) {
		ctx, cancel := context.WithTimeout(ctx, dnsTimeout)
		defer cancel()
		return r.LookupTXT(ctx, name)
	}
}

// isNotFound reports whether err says the name or record does not exist.
func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}
