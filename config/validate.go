package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Validate checks that the configuration makes sense. It returns nil, one *Error, or several joined with
// errors.Join, one per line; each names the key it is about.
func (c *Config) Validate() error {
	problems := c.problems()
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = p
	}
	return joinErrors(errs)
}

// listener is one entry of [listen].
type listener struct {
	key, addr string
	tls       bool // implicit TLS: needs a certificate
	starttls  bool // offers STARTTLS, and logins need it off loopback
}

func (c *Config) listeners() []listener {
	l := &c.Listen
	return []listener{
		{key: "listen.imap", addr: l.IMAP, starttls: true},
		{key: "listen.imaps", addr: l.IMAPS, tls: true},
		{key: "listen.smtp", addr: l.SMTP},
		{key: "listen.submission", addr: l.Submission, starttls: true},
		{key: "listen.submissions", addr: l.Submissions, tls: true},
		{key: "listen.https", addr: l.HTTPS, tls: true},
		{key: "listen.admin", addr: l.Admin},
	}
}

// problems returns every problem of c, in the order of the keys.
func (c *Config) problems() []*Error {
	var errs []*Error
	add := func(key, format string, args ...any) {
		errs = append(errs, &Error{Key: key, Msg: key + ": " + fmt.Sprintf(format, args...)})
	}

	if c.Hostname == "" {
		add("hostname", `must be set to the server's public DNS name, e.g. "mail.school.example"`)
	} else if err := checkDNSName(c.Hostname); err != nil {
		add("hostname", "%q %v", c.Hostname, err)
	}

	if len(c.Domains) == 0 {
		add("domains", `must list at least one mail domain, e.g. ["school.example"]`)
	}
	seen := map[string]bool{}
	for _, d := range c.Domains {
		switch {
		case d == "":
			add("domains", "contains an empty domain")
		case checkDNSName(d) != nil:
			add("domains", "%q %v", d, checkDNSName(d))
		case seen[strings.ToLower(d)]:
			add("domains", "%q is listed twice", d)
		}
		seen[strings.ToLower(d)] = true
	}

	if strings.TrimSpace(c.DataDir) == "" {
		add("data_dir", `must be set to a directory, e.g. "/var/lib/kreide"`)
	}

	if c.DemoAccount != "" {
		local, domain, ok := strings.Cut(c.DemoAccount, "@")
		switch {
		case !ok || !validLocalPart(local) || strings.Contains(domain, "@"):
			add("demo_account", "%q is not an e-mail address like \"demo@%s\"", c.DemoAccount, c.PrimaryDomain())
		case len(c.Domains) > 0 && !c.HasDomain(domain):
			add("demo_account", "%q is not in one of the domains (%s)", c.DemoAccount, strings.Join(c.Domains, ", "))
		}
	}

	// [listen]
	used := map[string]string{}
	var tlsNeeded []string
	for _, l := range c.listeners() {
		if l.addr == "" {
			continue
		}
		host, port, err := splitListen(l.addr)
		if err != nil {
			add(l.key, "%q %v", l.addr, err)
			continue
		}
		if port != "0" {
			norm := net.JoinHostPort(host, port)
			if other, dup := used[norm]; dup {
				add(l.key, "%q is already used by %s", l.addr, other)
			}
			used[norm] = l.key
		}
		if l.tls || l.starttls && !isLoopbackHost(host) {
			tlsNeeded = append(tlsNeeded, l.key)
		}
	}

	// [tls]
	haveFiles := c.TLS.CertFile != "" && c.TLS.KeyFile != ""
	switch {
	case c.TLS.CertFile != "" && c.TLS.KeyFile == "":
		add("tls.key_file", "must be set too when tls.cert_file is set")
	case c.TLS.CertFile == "" && c.TLS.KeyFile != "":
		add("tls.cert_file", "must be set too when tls.key_file is set")
	case !haveFiles && !c.TLS.SelfSigned && !c.TLS.ACME && len(tlsNeeded) > 0:
		verb := "need"
		if len(tlsNeeded) == 1 {
			verb = "needs"
		}
		errs = append(errs, &Error{Key: "tls", Msg: fmt.Sprintf(
			"%s %s a TLS certificate: set tls.acme = true, or tls.cert_file and tls.key_file, or tls.self_signed = true",
			strings.Join(tlsNeeded, ", "), verb)})
	}
	if c.TLS.ACME {
		switch {
		case c.TLS.CertFile != "" || c.TLS.KeyFile != "":
			add("tls.acme", "and tls.cert_file/tls.key_file both name a certificate: use one or the other")
		case c.Listen.HTTPS == "":
			add("tls.acme", `needs listen.https (e.g. ":443"): the certificate authority checks this server on port 443 (TLS-ALPN-01)`)
		case c.Hostname != "" && !publicName(c.Hostname):
			add("tls.acme", "hostname %q is not a public DNS name, so no certificate authority can issue a certificate for it: use tls.self_signed or your own certificate", c.Hostname)
		}
	}
	if c.TLS.ACMEEmail != "" {
		local, domain, ok := strings.Cut(c.TLS.ACMEEmail, "@")
		if !ok || !validLocalPart(local) || checkDNSName(domain) != nil {
			add("tls.acme_email", "%q is not an e-mail address", c.TLS.ACMEEmail)
		}
	}

	// [auth]
	switch c.Auth.AllowPlaintext {
	case PlaintextLoopback, PlaintextNever:
	default:
		add("auth.allow_plaintext", "%q is not one of %q or %q", c.Auth.AllowPlaintext, PlaintextLoopback, PlaintextNever)
	}

	// [limits]
	positiveSize := func(key string, s Size) {
		if s <= 0 {
			add(key, "must be more than 0, e.g. \"50 MiB\" (got %d)", int64(s))
		}
	}
	positive := func(key string, n int) {
		if n <= 0 {
			add(key, "must be more than 0 (got %d)", n)
		}
	}
	positiveSize("limits.max_message_size", c.Limits.MaxMessageSize)
	positive("limits.max_recipients", c.Limits.MaxRecipients)
	positiveSize("limits.default_quota", c.Limits.DefaultQuota)
	positive("limits.max_conns_per_ip", c.Limits.MaxConnsPerIP)
	positiveSize("limits.max_upload_size", c.Limits.MaxUploadSize)
	return errs
}

// checkDNSName checks a host name such as "mail.school.example" (RFC 1035 section 2.3.1, with digits
// allowed first as in RFC 1123 section 2.1). The error completes a sentence starting with the name.
func checkDNSName(name string) error {
	if _, err := netip.ParseAddr(name); err == nil {
		return fmt.Errorf("is an IP address: a DNS name is needed here")
	}
	if len(name) > 253 {
		return fmt.Errorf("is not a valid DNS name: longer than 253 characters")
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		switch {
		case l == "":
			return fmt.Errorf("is not a valid DNS name: empty label (leading, trailing or double dot)")
		case len(l) > 63:
			return fmt.Errorf("is not a valid DNS name: label %q is longer than 63 characters", l)
		case l[0] == '-' || l[len(l)-1] == '-':
			return fmt.Errorf("is not a valid DNS name: label %q starts or ends with '-'", l)
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("is not a valid DNS name: %q is not allowed (only letters a-z, digits, '-' and '.'; write international names in their xn-- form)", r)
			}
		}
	}
	if tld := labels[len(labels)-1]; strings.Trim(tld, "0123456789") == "" {
		return fmt.Errorf("is not a valid DNS name: the last label %q is all digits", tld)
	}
	return nil
}

// validLocalPart accepts the usual dot-atom local parts of e-mail addresses (RFC 5322 section 3.4.1).
func validLocalPart(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".!#$%&'*+-/=?^_`{|}~", r)) {
			return false
		}
	}
	return true
}

// splitListen checks a listening address "host:port". The error completes a sentence starting with the
// address.
func splitListen(addr string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(addr)
	if err != nil {
		why := "cannot split it"
		var ae *net.AddrError
		if errors.As(err, &ae) {
			why = ae.Err // without the address, which the message already quotes
		}
		return "", "", fmt.Errorf(`is not host:port (%s), e.g. "0.0.0.0:993", ":993" or "[::1]:993"`, why)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || port != strconv.FormatUint(n, 10) {
		return "", "", fmt.Errorf("has an invalid port %q: want a number from 0 to 65535", port)
	}
	if host != "" {
		if a, err := netip.ParseAddr(host); err == nil {
			if a.Zone() != "" && !a.Is6() {
				return "", "", fmt.Errorf("has an invalid host %q", host)
			}
		} else if checkDNSName(host) != nil {
			return "", "", fmt.Errorf("has an invalid host %q: want an IP address, a host name or nothing (all addresses)", host)
		}
	}
	return host, port, nil
}

// publicName reports whether a valid DNS name can be in the public DNS: it has at least two labels and is
// not under a top-level name reserved for local or test use (RFC 2606, RFC 6761, RFC 6762, and "internal").
func publicName(name string) bool {
	name = strings.ToLower(name)
	dot := strings.LastIndexByte(name, '.')
	if dot < 0 {
		return false
	}
	switch name[dot+1:] {
	case "localhost", "local", "test", "invalid", "example", "internal", "home", "lan", "arpa":
		return false
	}
	return true
}

// isLoopbackHost reports whether a listening host only accepts connections from this machine.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
