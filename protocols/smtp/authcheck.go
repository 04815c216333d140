package smtp

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"
	gosmtp "github.com/emersion/go-smtp"
	"golang.org/x/net/publicsuffix"
)

// Sender authentication of inbound mail: SPF (RFC 7208) of the envelope
// sender, DKIM (RFC 6376) signatures, and DMARC (RFC 7489) over the From
// domain. The DNS questions start as soon as the header has arrived and run
// while the body streams in; DKIM verifies the stream as it passes.
//
// Policy: DMARC p=reject refuses the message (550 5.7.1, nothing stored),
// p=quarantine files it in Junk, p=none only reports. A domain without a
// DMARC record whose SPF says "fail" and that has no valid DKIM signature of
// its own also goes to Junk.

// spfTimeout bounds a whole SPF evaluation (up to 10 DNS lookups, RFC 7208
// section 4.6.4); a timeout gives temperror.
const spfTimeout = 30 * time.Second

// authChecks holds the lookups started for one message.
type authChecks struct {
	ip         net.IP
	helo       string
	mailFrom   string
	fromDomain string

	spfDone chan struct{}
	spf     spf.Result

	dmarcDone   chan struct{}
	dmarcRec    *dmarc.Record
	dmarcErr    error
	dmarcSubdom bool // the record is the organisational domain's
	spfIdentity string
}

func orgDomain(domain string) string {
	d, err := publicsuffix.EffectiveTLDPlusOne(strings.ToLower(strings.TrimSuffix(domain, ".")))
	if err != nil {
		return strings.ToLower(domain)
	}
	return d
}

func aligned(a, b string, mode dmarc.AlignmentMode) bool {
	a, b = strings.ToLower(a), strings.ToLower(b)
	if mode == dmarc.AlignmentStrict {
		return a == b
	}
	return orgDomain(a) == orgDomain(b)
}

// startChecks starts SPF and the DMARC record lookup in the background.
func startChecks(ctx context.Context, r Resolver, ip net.IP, helo, mailFrom, fromDomain string) *authChecks {
	c := &authChecks{ip: ip, helo: helo, mailFrom: mailFrom, fromDomain: fromDomain,
		spfDone: make(chan struct{}), dmarcDone: make(chan struct{})}
	sender := mailFrom
	if sender == "" {
		// RFC 7208 section 2.4: for the null sender, check postmaster@HELO.
		sender = "postmaster@" + helo
	}
	c.spfIdentity = domainOf(sender)
	go func() {
		defer close(c.spfDone)
		ctx, cancel := context.WithTimeout(ctx, spfTimeout)
		defer cancel()
		res, _ := spf.CheckHostWithSender(ip, helo, sender, spf.WithResolver(r), spf.WithContext(ctx))
		c.spf = res
	}()
	go func() {
		defer close(c.dmarcDone)
		opts := &dmarc.LookupOptions{LookupTXT: lookupTXTFunc(ctx, r)}
		rec, err := dmarc.LookupWithOptions(fromDomain, opts)
		if errors.Is(err, dmarc.ErrNoPolicy) {
			if org := orgDomain(fromDomain); org != fromDomain {
				rec, err = dmarc.LookupWithOptions(org, opts)
				c.dmarcSubdom = true
			}
		}
		c.dmarcRec, c.dmarcErr = rec, err
	}()
	return c
}

// wait lets the lookups finish (used when the message is abandoned).
func (c *authChecks) wait() {
	<-c.spfDone
	<-c.dmarcDone
}

// verdict is what the checks decide for one message.
type verdict struct {
	results []authres.Result
	junk    bool
	reject  *gosmtp.SMTPError
}

// evaluate combines SPF, the DKIM verifications and the DMARC record.
func (c *authChecks) evaluate(verifs []*dkim.Verification, dkimErr error) verdict {
	c.wait()
	var v verdict
	v.results = append(v.results, &authres.SPFResult{Value: authres.ResultValue(c.spf), From: c.mailFrom, Helo: cleanHelo(c.helo)})

	var dkimPass []string // domains with a valid signature
	for _, ver := range verifs {
		r := &authres.DKIMResult{Domain: ver.Domain, Identifier: ver.Identifier}
		switch {
		case ver.Err == nil:
			r.Value = authres.ResultPass
			dkimPass = append(dkimPass, ver.Domain)
		case dkim.IsTempFail(ver.Err):
			r.Value, r.Reason = authres.ResultTempError, shortReason(ver.Err)
		case dkim.IsPermFail(ver.Err):
			r.Value, r.Reason = authres.ResultPermError, shortReason(ver.Err)
		default:
			r.Value, r.Reason = authres.ResultFail, shortReason(ver.Err)
		}
		v.results = append(v.results, r)
	}
	if len(verifs) == 0 {
		r := &authres.DKIMResult{Value: authres.ResultNone}
		if dkimErr != nil {
			r.Value, r.Reason = authres.ResultPermError, shortReason(dkimErr)
		}
		v.results = append(v.results, r)
	}

	dres := &authres.DMARCResult{From: c.fromDomain}
	v.results = append(v.results, dres)
	rec, err := c.dmarcRec, c.dmarcErr
	switch {
	case errors.Is(err, dmarc.ErrNoPolicy):
		dres.Value = authres.ResultNone
		// Local policy for domains without DMARC: a hard SPF failure that no
		// valid signature of the From domain outweighs goes to Junk.
		if c.spf == spf.Fail && !anyAligned(dkimPass, c.fromDomain, dmarc.AlignmentRelaxed) {
			v.junk = true
		}
		return v
	case dmarc.IsTempFail(err):
		dres.Value = authres.ResultTempError
		return v
	case err != nil || rec == nil:
		dres.Value = authres.ResultPermError
		return v
	}
	spfAligned := c.spf == spf.Pass && aligned(c.spfIdentity, c.fromDomain, rec.SPFAlignment)
	if spfAligned || anyAligned(dkimPass, c.fromDomain, rec.DKIMAlignment) {
		dres.Value = authres.ResultPass
		return v
	}
	dres.Value = authres.ResultFail
	policy := rec.Policy
	if c.dmarcSubdom && rec.SubdomainPolicy != "" {
		policy = rec.SubdomainPolicy
	}
	// RFC 7489 section 6.6.4: a message outside the pct sample gets the
	// next weaker policy.
	if rec.Percent != nil && *rec.Percent < 100 && rand.IntN(100) >= *rec.Percent {
		switch policy {
		case dmarc.PolicyReject:
			policy = dmarc.PolicyQuarantine
		case dmarc.PolicyQuarantine:
			policy = dmarc.PolicyNone
		}
	}
	dres.Reason = "p=" + string(policy)
	switch policy {
	case dmarc.PolicyReject:
		v.reject = smtpErr(550, 5, 7, 1, "Rejected by the DMARC policy of "+c.fromDomain)
	case dmarc.PolicyQuarantine:
		v.junk = true
	}
	return v
}

func anyAligned(domains []string, from string, mode dmarc.AlignmentMode) bool {
	for _, d := range domains {
		if aligned(d, from, mode) {
			return true
		}
	}
	return false
}

func shortReason(err error) string {
	s := strings.TrimPrefix(err.Error(), "dkim: ")
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}

// authResults formats the Authentication-Results field (RFC 8601).
func authResults(hostname string, results []authres.Result) string {
	v := strings.ReplaceAll(noControls(authres.Format(hostname, results)), " ;", ";")
	return fold("Authentication-Results", strings.TrimSpace(v), ";")
}
