package config

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// WriteExample writes c as a kreide.toml in which every setting is explained. Default().WriteExample
// gives the example file; `kreide setup` writes the configuration it built. Parse of the output gives back
// c (for a c that passes Validate, after the lower-casing Parse does).
func (c *Config) WriteExample(w io.Writer) error {
	e := &exampleWriter{}
	e.comment(`kreide configuration.

Every setting is explained above it. A setting left out of this file takes its
default value; an unknown setting is an error. Strings are in double quotes.
Sizes are written like "50 MiB": units B, KB, MB, GB, TB (powers of 1000) and
KiB, MiB, GiB, TiB (powers of 1024). Relative paths are relative to the
directory kreide is started in.`)
	e.sep = true

	e.comment(`The server's public DNS name, e.g. "mail.school.example". Mail programs
connect to it, the TLS certificate is for it, and other mail servers are
greeted with it. Point its DNS A/AAAA records at this machine.`)
	e.str("hostname", c.Hostname)
	e.comment(`The mail domains this server receives mail for, e.g. ["school.example"].
The first one is the primary domain: new accounts get their address in it.
Each domain's MX record must point at the hostname above.`)
	e.strs("domains", c.Domains)
	e.comment(`Where kreide keeps everything it stores: accounts, mail, calendars, contacts,
files and the self-signed certificate. Created if missing. Back it up.`)
	e.str("data_dir", c.DataDir)
	e.comment(`When set and there is no account yet, "kreide serve" creates this account and
prints its password, so kreide can be tried at once. It must be an address in
one of the domains. Leave it empty ("") on a real server.`)
	e.str("demo_account", c.DemoAccount)

	e.table("listen", `Where each protocol listens, as "host:port". ":993" listens on all addresses of
the machine, "127.0.0.1:993" only on this machine; "" turns a protocol off.
The standard ports are shown; ports below 1024 need root or the
CAP_NET_BIND_SERVICE capability.`)
	e.comment(`IMAP with STARTTLS, for mail programs (standard ":143").`)
	e.str("imap", c.Listen.IMAP)
	e.comment(`IMAP over TLS, for mail programs (standard ":993").`)
	e.str("imaps", c.Listen.IMAPS)
	e.comment(`SMTP, to receive mail from other mail servers (standard ":25"; other servers
only ever use port 25).`)
	e.str("smtp", c.Listen.SMTP)
	e.comment(`Mail submission with STARTTLS, for mail programs sending mail (standard ":587").`)
	e.str("submission", c.Listen.Submission)
	e.comment(`Mail submission over TLS (standard ":465").`)
	e.str("submissions", c.Listen.Submissions)
	e.comment(`HTTPS: calendars (CalDAV), contacts (CardDAV), files (WebDAV) and automatic
set-up of mail programs (standard ":443").`)
	e.str("https", c.Listen.HTTPS)
	e.comment(`Metrics and health checks over plain HTTP. Off by default; when used, keep it
on a private address, e.g. "127.0.0.1:9100".`)
	e.str("admin", c.Listen.Admin)

	e.table("tls", `The TLS certificate for IMAPS, submission, HTTPS and STARTTLS: from Let's
Encrypt (acme), one you provide (cert_file and key_file), or one kreide makes
itself (self_signed).`)
	e.comment(`PEM certificate chain for the hostname, leaf first, and its private key. Set
both or neither. When set, self_signed is ignored.`)
	e.str("cert_file", c.TLS.CertFile)
	e.str("key_file", c.TLS.KeyFile)
	e.comment(`Generate a self-signed certificate and keep it in <data_dir>/tls. Mail
programs warn about it until it is accepted once: fine for a test or a closed
network, use a real certificate otherwise.`)
	e.bool("self_signed", c.TLS.SelfSigned)
	e.comment(`Automatic certificates from Let's Encrypt, renewed without a restart, for the
hostname and autoconfig./autodiscover.<domain>. Let's Encrypt checks this
server on port 443, so listen.https must be reachable from the internet and
the DNS records must point here. Kept in <data_dir>/acme; until one is
obtained, the self-signed certificate is served. Use either acme or
cert_file/key_file. acme = true accepts Let's Encrypt's terms of service;
acme_email (optional) is the contact address given to Let's Encrypt.`)
	e.bool("acme", c.TLS.ACME)
	e.str("acme_email", c.TLS.ACMEEmail)

	e.table("auth", "Login rules.")
	e.comment(`When a password may be sent without TLS: "loopback" only from this machine
(for local tools and tests), "never" not at all. Over the network passwords
always need TLS.`)
	e.str("allow_plaintext", c.Auth.AllowPlaintext)

	e.table("limits", "Limits that protect the server and its users.")
	e.comment(`Largest mail message accepted.`)
	e.size("max_message_size", c.Limits.MaxMessageSize)
	e.comment(`Largest number of recipients of one message.`)
	e.int("max_recipients", c.Limits.MaxRecipients)
	e.comment(`Storage space of a new account: mail, calendars, contacts and files together.
It can be changed per account.`)
	e.size("default_quota", c.Limits.DefaultQuota)
	e.comment(`Largest number of simultaneous connections from one IP address, for IMAP, SMTP
and HTTPS each. Each phone or mail program opens several; raise it when many users
share one address (NAT).`)
	e.int("max_conns_per_ip", c.Limits.MaxConnsPerIP)
	e.comment(`Largest single file accepted over WebDAV.`)
	e.size("max_upload_size", c.Limits.MaxUploadSize)

	_, err := io.WriteString(w, e.b.String())
	return err
}

// exampleWriter builds the example file.
type exampleWriter struct {
	b   strings.Builder
	sep bool // a blank line is due before the next comment
}

func (e *exampleWriter) setting(format string, args ...any) {
	fmt.Fprintf(&e.b, format+"\n", args...)
	e.sep = true
}

func (e *exampleWriter) comment(text string) {
	if e.sep {
		e.b.WriteByte('\n')
		e.sep = false
	}
	for _, line := range strings.Split(text, "\n") {
		if line == "" {
			e.b.WriteString("#\n")
		} else {
			e.b.WriteString("# " + line + "\n")
		}
	}
}

func (e *exampleWriter) table(name, doc string) {
	e.sep = e.b.Len() > 0
	e.comment(doc)
	e.b.WriteString("[" + name + "]\n")
	e.sep = true
}

func (e *exampleWriter) str(key, v string) { e.setting("%s = %s", key, quote(v)) }

func (e *exampleWriter) bool(key string, v bool) { e.setting("%s = %t", key, v) }

func (e *exampleWriter) int(key string, v int) { e.setting("%s = %d", key, v) }

func (e *exampleWriter) size(key string, v Size) {
	if v < 0 {
		// Not valid, and "-5 B" would not parse: write the number.
		e.setting("%s = %d", key, int64(v))
		return
	}
	e.str(key, v.String())
}

func (e *exampleWriter) strs(key string, v []string) {
	q := make([]string, len(v))
	for i, s := range v {
		q[i] = quote(s)
	}
	e.setting("%s = [%s]", key, strings.Join(q, ", "))
}

// quote writes s as a TOML basic string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\u` + fmt.Sprintf("%04X", r))
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\uFFFD`) // invalid UTF-8 cannot be written in TOML
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
