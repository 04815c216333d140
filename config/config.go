// Package config holds kreide's configuration: one TOML file, typed, documented and checked.
//
// The doc comments on the fields below are the administrator's documentation; WriteExample turns the same
// settings into a commented kreide.toml. Every setting has a safe default (see Default), so a missing file
// or a missing key is never an error, but an unknown key, a value of the wrong type or a value that makes
// no sense is: Load reports it with the file name, the line and the key, e.g.
//
//	kreide.toml:7: unknown key "listen.imapz" (did you mean "listen.imap"?)
//
// Relative paths (data_dir, tls.cert_file, tls.key_file) are relative to the directory kreide is started
// in. Host names and mail domains are case-insensitive; Parse stores them in lower case.
package config

import "strings"

// Config is the whole configuration of a kreide server.
type Config struct {
	// Hostname is the server's public DNS name, e.g. "mail.school.example". Clients are told to connect to
	// it, the TLS certificate is for it, and the SMTP server greets other mail servers with it. It must be
	// a DNS name, not an IP address.
	Hostname string `toml:"hostname"`

	// Domains are the mail domains this server receives mail for, e.g. ["school.example"]. The first one is
	// the primary domain: new accounts get their address in it unless told otherwise. At least one.
	Domains []string `toml:"domains"`

	// DataDir is the directory where kreide keeps everything it stores: accounts, mail, calendars,
	// contacts, files and the self-signed certificate. It is created if missing. Back it up.
	DataDir string `toml:"data_dir"`

	// DemoAccount, when set and no account exists yet, makes `kreide serve` create this account and print
	// its password, so kreide can be tried at once. It must be an address in one of Domains. Leave it empty
	// ("") on a real server. A config file that does not set it and serves other domains than the default's
	// has none.
	DemoAccount string `toml:"demo_account"`

	// Listen says on which addresses each protocol is served.
	Listen Listen `toml:"listen"`

	// TLS says where the TLS certificate comes from.
	TLS TLS `toml:"tls"`

	// Auth holds the login rules.
	Auth Auth `toml:"auth"`

	// Limits protects the server and its users from oversized or abusive use.
	Limits Limits `toml:"limits"`
}

// Listen holds one listening address per protocol, as "host:port". An empty host (":993") means all
// addresses of the machine; "" turns the protocol off. Ports below 1024 need root or the
// CAP_NET_BIND_SERVICE capability.
type Listen struct {
	// IMAP is IMAP with STARTTLS (standard port 143).
	IMAP string `toml:"imap"`

	// IMAPS is IMAP over implicit TLS (standard port 993). Needs a TLS certificate.
	IMAPS string `toml:"imaps"`

	// SMTP receives mail from other mail servers (standard port 25; other servers only ever use port 25).
	SMTP string `toml:"smtp"`

	// Submission is where users' mail programs send mail, with STARTTLS (standard port 587).
	Submission string `toml:"submission"`

	// Submissions is mail submission over implicit TLS (standard port 465). Needs a TLS certificate.
	Submissions string `toml:"submissions"`

	// HTTPS serves CalDAV, CardDAV, WebDAV and the automatic client set-up (standard port 443). Needs a
	// TLS certificate.
	HTTPS string `toml:"https"`

	// Admin serves metrics and health checks over plain HTTP. Off ("") by default; when used, keep it on a
	// loopback or otherwise private address, e.g. "127.0.0.1:9100".
	Admin string `toml:"admin"`
}

// TLS says where the certificate for IMAPS, Submissions, HTTPS and STARTTLS comes from: Let's Encrypt
// (acme), a certificate and key you provide (cert_file and key_file), or one kreide makes itself
// (self_signed).
type TLS struct {
	// CertFile is a PEM file with the certificate chain for Hostname, leaf first. Set it together with
	// KeyFile. When both are set, SelfSigned is ignored.
	CertFile string `toml:"cert_file"`

	// KeyFile is the PEM file with the private key of CertFile. Keep it readable by kreide only.
	KeyFile string `toml:"key_file"`

	// SelfSigned makes kreide generate a self-signed certificate for Hostname and keep it in
	// <data_dir>/tls. Mail programs warn about such a certificate until it is accepted once; fine for a
	// test or a closed network, use a real certificate otherwise.
	SelfSigned bool `toml:"self_signed"`

	// ACME obtains certificates from Let's Encrypt automatically, and renews them without a restart, for
	// Hostname and for autoconfig.<domain> and autodiscover.<domain> of each domain. Let's Encrypt checks
	// the server on port 443 (the TLS-ALPN-01 challenge), so listen.https must be set and reachable from
	// the internet, and the DNS records of those names must point at this server. The certificates are kept
	// in <data_dir>/acme. Until one is obtained, the self-signed certificate is served. Use either ACME or
	// CertFile and KeyFile. By using it you accept Let's Encrypt's terms of service.
	ACME bool `toml:"acme"`

	// ACMEEmail is the contact address given to the certificate authority with ACME (optional). If set, it
	// must be an e-mail address.
	ACMEEmail string `toml:"acme_email"`
}

// Values of Auth.AllowPlaintext.
const (
	// PlaintextLoopback allows passwords without TLS only from the machine itself (127.0.0.0/8, ::1).
	PlaintextLoopback = "loopback"
	// PlaintextNever never accepts a password without TLS.
	PlaintextNever = "never"
)

// Auth holds the login rules.
type Auth struct {
	// AllowPlaintext says when a password may be sent without TLS (IMAP LOGIN and AUTHENTICATE PLAIN,
	// SMTP AUTH, HTTP Basic): "loopback" (the default) allows it only from the machine itself, for local
	// tools and tests; "never" refuses it always. Over the network, passwords always need TLS.
	AllowPlaintext string `toml:"allow_plaintext"`
}

// Limits protects the server and its users. Sizes are written like "50 MiB" (see Size).
type Limits struct {
	// MaxMessageSize is the largest mail message accepted, by SMTP or IMAP APPEND. Announced to other
	// servers with SMTP SIZE.
	MaxMessageSize Size `toml:"max_message_size"`

	// MaxRecipients is the largest number of recipients of one message.
	MaxRecipients int `toml:"max_recipients"`

	// DefaultQuota is the storage space of a new account (mail, calendars, contacts and files together).
	// It can be changed per account.
	DefaultQuota Size `toml:"default_quota"`

	// MaxConnsPerIP is the largest number of simultaneous connections from one IP address to each of
	// IMAP, SMTP and HTTPS. A phone or mail program opens several; a whole school behind one NAT address
	// opens many: raise it in that case.
	MaxConnsPerIP int `toml:"max_conns_per_ip"`

	// MaxUploadSize is the largest single file accepted over WebDAV.
	MaxUploadSize Size `toml:"max_upload_size"`
}

// Default returns the configuration used when there is no config file: a demo that serves "localhost"
// on loopback addresses only, with unprivileged ports, a self-signed certificate, data in ./kreide-data and
// a demo account.
func Default() *Config {
	return &Config{
		Hostname:    "localhost",
		Domains:     []string{"localhost"},
		DataDir:     "./kreide-data",
		DemoAccount: "demo@localhost",
		Listen: Listen{
			IMAP:        "127.0.0.1:1143",
			IMAPS:       "127.0.0.1:1993",
			SMTP:        "127.0.0.1:2525",
			Submission:  "127.0.0.1:1587",
			Submissions: "127.0.0.1:1465",
			HTTPS:       "127.0.0.1:8443",
			Admin:       "",
		},
		TLS: TLS{
			SelfSigned: true,
		},
		Auth: Auth{
			AllowPlaintext: PlaintextLoopback,
		},
		Limits: Limits{
			MaxMessageSize: 50 * MiB,
			MaxRecipients:  100,
			DefaultQuota:   2 * GiB,
			MaxConnsPerIP:  20,
			MaxUploadSize:  4 * GiB,
		},
	}
}

// PrimaryDomain returns the first of Domains, or "" if there is none.
func (c *Config) PrimaryDomain() string {
	if len(c.Domains) == 0 {
		return ""
	}
	return c.Domains[0]
}

// HasDomain reports whether domain (any case) is one of Domains.
func (c *Config) HasDomain(domain string) bool {
	for _, d := range c.Domains {
		if strings.EqualFold(d, domain) {
			return true
		}
	}
	return false
}

// normalize puts the case-insensitive names in lower case, so that the rest of kreide can compare them
// with ==.
func (c *Config) normalize() {
	c.Hostname = strings.ToLower(c.Hostname)
	for i, d := range c.Domains {
		c.Domains[i] = strings.ToLower(d)
	}
	if at := strings.LastIndexByte(c.DemoAccount, '@'); at >= 0 {
		c.DemoAccount = c.DemoAccount[:at] + "@" + strings.ToLower(c.DemoAccount[at+1:])
	}
}
