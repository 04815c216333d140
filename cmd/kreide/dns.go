package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"kreide/config"
	"kreide/internal/admin"
)

func dnsCommand() *command {
	return &command{
		name:  "dns",
		short: "print the DNS records mail needs, or check them",
		long: `Mail to and from the school's domains only works when the right DNS records
are published: MX (where mail goes), SPF, DKIM and DMARC (so other servers
trust mail from here), and SRV and CNAME records with which mail, calendar and
contact programs find the server by themselves.

These commands work the same whether kreide serve is running or not.

Example:
  kreide dns records -config kreide.toml > records.txt
  kreide dns check -config kreide.toml`,
		// "kreide dns" alone prints the records once the command tree lets a
		// command with subcommands run by itself.
		run: dnsRecords,
		sub: []*command{
			{
				name:  "dns records",
				short: "print the records to publish, as zone-file lines",
				long: `Prints, for every domain in the config, the DNS records to publish at the DNS
provider, one zone-file line each with a comment saying what it is for. The
DKIM keys are created the first time (they are kept in the data dir).

Also needed, and not printed because kreide cannot know the address: an A
record (and an AAAA record for IPv6) for the hostname with this server's
address, and the reverse record (PTR) of that address, which the hosting
provider sets, naming the hostname.

Example:
  kreide dns records -config /etc/kreide/kreide.toml`,
				run: dnsRecords,
			},
			{
				name:  "dns check",
				short: "look the records up and say which are missing or wrong",
				long: `Looks up every record that 'kreide dns records' prints, plus the address and
the reverse record of the hostname, and says for each: OK, MISSING or WRONG
(with what was found and what to publish instead). Exits with status 1 when
any record is missing or wrong.

DNS changes take a while to be seen everywhere (up to the record's TTL, often
an hour). -resolver asks one DNS server directly, e.g. the DNS provider's.

Example:
  kreide dns check -config /etc/kreide/kreide.toml
  kreide dns check -resolver 9.9.9.9 -config /etc/kreide/kreide.toml`,
				flags: func(fs *flag.FlagSet) {
					fs.String("resolver", "", "ask the DNS server at `IP` (port 53 unless given) instead of the system's resolver")
				},
				run: dnsCheck,
			},
		},
	}
}

// fetchDNSRecords asks the store (through serve when it runs) for the records.
func (e *env) fetchDNSRecords(ctx context.Context) ([]admin.DNSRecord, *config.Config, error) {
	cfg, err := e.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	resp, _, err := e.do(ctx, admin.Request{Op: admin.OpDNSRecords, Hostname: cfg.Hostname})
	if err != nil {
		return nil, nil, err
	}
	return resp.Records, cfg, nil
}

func dnsRecords(ctx context.Context, e *env, args []string) error {
	recs, cfg, err := e.fetchDNSRecords(ctx)
	if err != nil {
		return err
	}
	writeZone(e.stdout, cfg.Hostname, recs)
	return nil
}

// writeZone prints recs as zone-file lines, grouped by domain, each with a
// comment.
func writeZone(w io.Writer, hostname string, recs []admin.DNSRecord) {
	fmt.Fprintf(w, "; DNS records for the mail server %s (kreide dns records).\n", hostname)
	fmt.Fprintf(w, "; Publish them at your DNS provider, then run 'kreide dns check'.\n")
	fmt.Fprintf(w, "; Also needed: an A (and for IPv6 an AAAA) record for %s with this\n", hostname)
	fmt.Fprintf(w, "; server's address, and the reverse (PTR) record of that address naming\n")
	fmt.Fprintf(w, "; %s (your hosting provider sets that one).\n", hostname)
	domain := ""
	for _, r := range recs {
		if d := recordDomain(r, recs); d != domain {
			domain = d
			fmt.Fprintf(w, "\n; ---- %s ----\n", domain)
		}
		fmt.Fprintf(w, "\n; %s\n%s\n", r.Note, r.ZoneLine())
	}
}

// recordDomain is the mail domain r belongs to: the longest MX owner name
// that r's name is or ends with.
func recordDomain(r admin.DNSRecord, recs []admin.DNSRecord) string {
	best := ""
	for _, mx := range recs {
		if mx.Type != "MX" {
			continue
		}
		if (r.Name == mx.Name || strings.HasSuffix(r.Name, "."+mx.Name)) && len(mx.Name) > len(best) {
			best = mx.Name
		}
	}
	return best
}

// resolver is the part of *net.Resolver that dns check uses; tests give
// their own answers.
type resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
	LookupCNAME(ctx context.Context, host string) (string, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

var _ resolver = (*net.Resolver)(nil)

// Outcomes of checking one record.
const (
	dnsOK      = "OK"
	dnsMissing = "MISSING"
	dnsWrong   = "WRONG"
	dnsError   = "ERROR" // the lookup itself failed
)

// dnsResult is the outcome of checking one record.
type dnsResult struct {
	rec    admin.DNSRecord
	status string
	found  []string // what DNS answered, when it is not what it should be
	note   string   // explanation, for OK too
}

func dnsCheck(ctx context.Context, e *env, args []string) error {
	var r resolver = net.DefaultResolver
	if server := e.flag("resolver"); server != "" {
		nr, err := directResolver(server)
		if err != nil {
			return usagef("-resolver: %v", err)
		}
		r = nr
	}
	recs, cfg, err := e.fetchDNSRecords(ctx)
	if err != nil {
		return err
	}
	results := checkDNS(ctx, r, cfg.Hostname, recs)
	if printDNSResults(e.stdout, results) == 0 {
		fmt.Fprintf(e.stdout, "\nAll %d records are right.\n", len(results))
		return nil
	}
	count := map[string]int{}
	for _, res := range results {
		count[res.status]++
	}
	var parts []string
	for _, st := range []struct{ status, what string }{{dnsMissing, "missing"}, {dnsWrong, "wrong"}, {dnsError, "could not be looked up"}} {
		if n := count[st.status]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st.what))
		}
	}
	return fmt.Errorf("of %d DNS records, %s: publish what is shown above, wait until the change is seen (up to the records' TTL), and run kreide dns check again", len(results), strings.Join(parts, ", "))
}

// directResolver asks the DNS server at addr ("IP" or "IP:port") only.
func directResolver(addr string) (*net.Resolver, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "53")
	}
	host, _, _ := net.SplitHostPort(addr)
	if net.ParseIP(host) == nil {
		return nil, fmt.Errorf("%q is not an IP address", host)
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}, nil
}

func printDNSResults(w io.Writer, results []dnsResult) (bad int) {
	for _, res := range results {
		what := res.rec.Name + " " + res.rec.Type
		fmt.Fprintf(w, "%-8s %s  (%s)\n", res.status, what, res.rec.Note)
		if res.note != "" {
			fmt.Fprintf(w, "         %s\n", res.note)
		}
		if res.status == dnsOK {
			continue
		}
		bad++
		for _, f := range res.found {
			fmt.Fprintf(w, "         found:   %s\n", f)
		}
		if res.rec.Value != "" && res.status != dnsError {
			verb := "publish"
			if res.status == dnsWrong {
				verb = "instead:"
			}
			fmt.Fprintf(w, "         %-8s %s\n", verb, res.rec.ZoneLine())
		}
	}
	return bad
}

// lookupTimeout bounds one DNS question.
const lookupTimeout = 10 * time.Second

// checkDNS checks every record (concurrently) and the hostname's address
// and reverse records, and returns the results in the order of recs.
func checkDNS(ctx context.Context, r resolver, hostname string, recs []admin.DNSRecord) []dnsResult {
	hostname = canon(hostname)
	results := make([]dnsResult, len(recs))
	var wg sync.WaitGroup
	for i, rec := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
			defer cancel()
			results[i] = checkRecord(ctx, r, hostname, rec)
		}()
	}
	ctx2, cancel := context.WithTimeout(ctx, 2*lookupTimeout)
	host := checkHost(ctx2, r, hostname)
	cancel()
	wg.Wait()
	return append(host, results...)
}

// checkHost checks that hostname has an address, and that each address's
// reverse record names it (receivers reject mail from addresses without).
func checkHost(ctx context.Context, r resolver, hostname string) []dnsResult {
	addrRec := admin.DNSRecord{Name: hostname, Type: "A/AAAA", Note: "this server's address"}
	ips, err := r.LookupIPAddr(ctx, hostname)
	if err != nil {
		return []dnsResult{failed(addrRec, err, "add an A record (and AAAA for IPv6) for "+hostname+" with this server's address")}
	}
	var out []dnsResult
	var found []string
	for _, ip := range ips {
		found = append(found, ip.IP.String())
	}
	out = append(out, dnsResult{rec: addrRec, status: dnsOK, note: strings.Join(found, ", ")})
	for _, ip := range ips {
		rec := admin.DNSRecord{Name: ip.IP.String(), Type: "PTR", Note: "reverse record: other mail servers reject mail from an address without one"}
		names, err := r.LookupAddr(ctx, ip.IP.String())
		if err != nil {
			out = append(out, failed(rec, err, "ask your hosting provider to set the reverse DNS of "+ip.IP.String()+" to "+hostname))
			continue
		}
		ok := false
		for _, n := range names {
			ok = ok || canon(n) == hostname
		}
		if ok {
			out = append(out, dnsResult{rec: rec, status: dnsOK})
		} else {
			out = append(out, dnsResult{rec: rec, status: dnsWrong, found: names,
				note: "ask your hosting provider to set the reverse DNS of " + ip.IP.String() + " to " + hostname})
		}
	}
	return out
}

// failed is the result of a lookup that returned err: MISSING for a name
// or record that does not exist, ERROR otherwise.
func failed(rec admin.DNSRecord, err error, note string) dnsResult {
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return dnsResult{rec: rec, status: dnsMissing, note: note}
	}
	return dnsResult{rec: rec, status: dnsError, note: "lookup failed: " + err.Error()}
}

// canon lower-cases a DNS name and drops the final dot.
func canon(name string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(name), "."))
}

func checkRecord(ctx context.Context, r resolver, hostname string, rec admin.DNSRecord) dnsResult {
	switch rec.Type {
	case "MX":
		return checkMX(ctx, r, hostname, rec)
	case "TXT":
		return checkTXT(ctx, r, rec)
	case "SRV":
		return checkSRV(ctx, r, rec)
	case "CNAME":
		return checkCNAME(ctx, r, hostname, rec)
	}
	return dnsResult{rec: rec, status: dnsError, note: "kreide cannot check " + rec.Type + " records"}
}

func checkMX(ctx context.Context, r resolver, hostname string, rec admin.DNSRecord) dnsResult {
	mxs, err := r.LookupMX(ctx, rec.Name)
	if err != nil {
		return failed(rec, err, "")
	}
	if len(mxs) == 0 {
		return dnsResult{rec: rec, status: dnsMissing}
	}
	var found []string
	for _, mx := range mxs {
		if canon(mx.Host) == hostname {
			return dnsResult{rec: rec, status: dnsOK}
		}
		found = append(found, fmt.Sprintf("%d %s", mx.Pref, mx.Host))
	}
	return dnsResult{rec: rec, status: dnsWrong, found: found, note: "mail for " + rec.Name + " goes to another server"}
}

// txtTags parses "k=v; k=v" (DKIM, DMARC) into lower-case keys and values
// without white space.
func txtTags(s string) map[string]string {
	tags := map[string]string{}
	for _, part := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		tags[strings.ToLower(strings.TrimSpace(k))] = strings.Join(strings.Fields(v), "")
	}
	return tags
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func checkTXT(ctx context.Context, r resolver, rec admin.DNSRecord) dnsResult {
	txts, err := r.LookupTXT(ctx, rec.Name)
	if err != nil {
		return failed(rec, err, "")
	}
	quote := func(ss []string) []string {
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = strconv.Quote(s)
		}
		return out
	}
	// The records of the same kind as rec (an SPF record among other TXT
	// records of the domain).
	kind := func(prefix string) []string {
		var out []string
		for _, t := range txts {
			if hasPrefixFold(strings.TrimSpace(t), prefix) {
				out = append(out, strings.TrimSpace(t))
			}
		}
		return out
	}
	switch {
	case hasPrefixFold(rec.Value, "v=spf1"):
		spf := kind("v=spf1")
		switch {
		case len(spf) == 0:
			return dnsResult{rec: rec, status: dnsMissing}
		case len(spf) > 1:
			return dnsResult{rec: rec, status: dnsWrong, found: quote(spf), note: "several SPF records: receivers treat that as an error; merge them into one"}
		case strings.EqualFold(strings.Join(strings.Fields(spf[0]), " "), rec.Value):
			return dnsResult{rec: rec, status: dnsOK}
		case spfAllowsMX(spf[0]):
			return dnsResult{rec: rec, status: dnsOK, note: "yours, which lets the MX send: " + strconv.Quote(spf[0])}
		}
		return dnsResult{rec: rec, status: dnsWrong, found: quote(spf), note: "it does not let this server (the MX) send mail for " + rec.Name + ": add mx before the final -all or ~all"}
	case hasPrefixFold(rec.Value, "v=DKIM1"):
		want := txtTags(rec.Value)["p"]
		var keys []string
		for _, t := range txts {
			tags := txtTags(t)
			if tags["p"] == want {
				return dnsResult{rec: rec, status: dnsOK}
			}
			if _, ok := tags["p"]; ok {
				keys = append(keys, t)
			}
		}
		if len(keys) == 0 {
			return dnsResult{rec: rec, status: dnsMissing}
		}
		return dnsResult{rec: rec, status: dnsWrong, found: quote(keys), note: "another key is published under this name"}
	case hasPrefixFold(rec.Value, "v=DMARC1"):
		dmarc := kind("v=DMARC1")
		switch {
		case len(dmarc) == 0:
			return dnsResult{rec: rec, status: dnsMissing}
		case len(dmarc) > 1:
			return dnsResult{rec: rec, status: dnsWrong, found: quote(dmarc), note: "several DMARC records: receivers ignore them all; keep one"}
		}
		switch txtTags(dmarc[0])["p"] {
		case "quarantine", "reject":
			return dnsResult{rec: rec, status: dnsOK}
		case "none":
			return dnsResult{rec: rec, status: dnsOK, note: "yours, with p=none: forged mail is only reported, not stopped"}
		}
		return dnsResult{rec: rec, status: dnsWrong, found: quote(dmarc), note: "it has no valid policy (p=quarantine, p=reject or p=none)"}
	}
	for _, t := range txts {
		if strings.EqualFold(strings.TrimSpace(t), rec.Value) {
			return dnsResult{rec: rec, status: dnsOK}
		}
	}
	if len(txts) == 0 {
		return dnsResult{rec: rec, status: dnsMissing}
	}
	return dnsResult{rec: rec, status: dnsWrong, found: quote(txts)}
}

// spfAllowsMX reports whether an SPF record lets the domain's MX hosts send
// (the "mx" mechanism, without a qualifier that denies). Other ways (a:,
// ip4:, include:) cannot be checked without knowing this server's address.
func spfAllowsMX(spf string) bool {
	for _, term := range strings.Fields(strings.ToLower(spf))[1:] {
		if term == "mx" || term == "+mx" || strings.HasPrefix(term, "mx:") || strings.HasPrefix(term, "mx/") || strings.HasPrefix(term, "+mx:") {
			return true
		}
	}
	return false
}

func checkSRV(ctx context.Context, r resolver, rec admin.DNSRecord) dnsResult {
	f := strings.Fields(rec.Value) // priority weight port target
	if len(f) != 4 {
		return dnsResult{rec: rec, status: dnsError, note: "unexpected SRV value " + strconv.Quote(rec.Value)}
	}
	port, _ := strconv.Atoi(f[2])
	_, srvs, err := r.LookupSRV(ctx, "", "", rec.Name)
	if err != nil {
		return failed(rec, err, "")
	}
	var found []string
	for _, s := range srvs {
		if canon(s.Target) == canon(f[3]) && int(s.Port) == port {
			return dnsResult{rec: rec, status: dnsOK}
		}
		found = append(found, fmt.Sprintf("%d %d %d %s", s.Priority, s.Weight, s.Port, s.Target))
	}
	if len(found) == 0 {
		return dnsResult{rec: rec, status: dnsMissing}
	}
	return dnsResult{rec: rec, status: dnsWrong, found: found}
}

func checkCNAME(ctx context.Context, r resolver, hostname string, rec admin.DNSRecord) dnsResult {
	target, err := r.LookupCNAME(ctx, rec.Name)
	if err != nil {
		return failed(rec, err, "")
	}
	if canon(target) == canon(rec.Value) {
		return dnsResult{rec: rec, status: dnsOK}
	}
	// An address record instead of the CNAME does as well, as long as it
	// is the server's address.
	if canon(target) == canon(rec.Name) {
		theirs, err1 := r.LookupIPAddr(ctx, rec.Name)
		ours, err2 := r.LookupIPAddr(ctx, hostname)
		if err1 == nil && err2 == nil && sameAddrs(theirs, ours) {
			return dnsResult{rec: rec, status: dnsOK, note: "an address record with the server's address instead of a CNAME: fine while the address does not change"}
		}
		var found []string
		for _, ip := range theirs {
			found = append(found, ip.IP.String())
		}
		return dnsResult{rec: rec, status: dnsWrong, found: found, note: "it has addresses of its own instead of a CNAME to " + hostname}
	}
	return dnsResult{rec: rec, status: dnsWrong, found: []string{target}}
}

// sameAddrs reports whether a and b hold the same addresses.
func sameAddrs(a, b []net.IPAddr) bool {
	if len(a) == 0 || len(a) != len(b) {
		return false
	}
	in := map[string]bool{}
	for _, ip := range b {
		in[ip.IP.String()] = true
	}
	for _, ip := range a {
		if !in[ip.IP.String()] {
			return false
		}
	}
	return true
}
