package config

import (
	"bytes"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestDefaultValidates(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

func TestParseEmptyIsDefault(t *testing.T) {
	for _, doc := range []string{"", "# nothing here\n", "\n\n"} {
		c, err := Parse("kreide.toml", []byte(doc))
		if err != nil {
			t.Fatalf("Parse(%q): %v", doc, err)
		}
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("Parse(%q) = %+v, want Default()", doc, c)
		}
	}
}

func TestExampleRoundTrip(t *testing.T) {
	custom := Default()
	custom.Hostname = "mail.school.example"
	custom.Domains = []string{"school.example", "pupils.school.example"}
	custom.DataDir = "/var/lib/kreide data \"quoted\" \\ back\\slash\ttab"
	custom.DemoAccount = ""
	custom.Listen = Listen{IMAP: ":143", IMAPS: ":993", SMTP: "0.0.0.0:25", Submission: "[::]:587",
		Submissions: ":465", HTTPS: ":443", Admin: "127.0.0.1:9100"}
	custom.TLS = TLS{CertFile: "/etc/kreide/fullchain.pem", KeyFile: "/etc/kreide/privkey.pem", ACMEEmail: "admin@school.example"}
	custom.Auth.AllowPlaintext = PlaintextNever
	custom.Limits = Limits{MaxMessageSize: 25 * MB, MaxRecipients: 50, DefaultQuota: 1536 * MiB, MaxConnsPerIP: 200, MaxUploadSize: 12345}

	for name, c := range map[string]*Config{"default": Default(), "custom": custom} {
		t.Run(name, func(t *testing.T) {
			if err := c.Validate(); err != nil {
				t.Fatalf("test config does not validate: %v", err)
			}
			var buf bytes.Buffer
			if err := c.WriteExample(&buf); err != nil {
				t.Fatal(err)
			}
			got, err := Parse("example.toml", buf.Bytes())
			if err != nil {
				t.Fatalf("Parse(WriteExample()) = %v\n%s", err, buf.String())
			}
			if !reflect.DeepEqual(got, c) {
				t.Errorf("round trip changed the config:\n got %+v\nwant %+v", got, c)
			}
		})
	}
}

// TestExampleCoversEveryKey makes sure a new field is not forgotten in WriteExample: every key is set,
// and every setting line has a comment above it (directly or as part of a group).
func TestExampleCoversEveryKey(t *testing.T) {
	var buf bytes.Buffer
	if err := Default().WriteExample(&buf); err != nil {
		t.Fatal(err)
	}
	lines := keyLines(buf.Bytes())
	for key := range knownKeys() {
		if lines[key] == 0 {
			t.Errorf("example does not set %q", key)
		}
	}
	prev := ""
	for i, line := range strings.Split(buf.String(), "\n") {
		if strings.Contains(line, " = ") && !strings.HasPrefix(line, "#") {
			if !strings.HasPrefix(prev, "#") && !strings.Contains(prev, " = ") {
				t.Errorf("example line %d %q has no comment above it", i+1, line)
			}
		}
		prev = line
	}
}

// TestFieldsDocumented checks that every field of the config structs has a doc comment: they are the
// administrator's documentation.
func TestFieldsDocumented(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "config.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	structs := 0
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return true
		}
		structs++
		for _, field := range st.Fields.List {
			if field.Doc == nil || len(strings.TrimSpace(field.Doc.Text())) < 10 {
				t.Errorf("%s: field %s.%s has no doc comment", fset.Position(field.Pos()), ts.Name, field.Names[0])
			}
		}
		return true
	})
	if structs != 5 {
		t.Errorf("found %d structs in config.go, want 5", structs)
	}
}

func TestParsePartialFileKeepsDefaults(t *testing.T) {
	doc := "hostname = \"Mail.School.Example\"\ndomains = [\"School.Example\"]\ndemo_account = \"Demo@SCHOOL.example\"\n[limits]\nmax_message_size = \"10MB\"\nmax_upload_size = 1024\n"
	c, err := Parse("kreide.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Hostname = "mail.school.example"
	want.Domains = []string{"school.example"}
	want.DemoAccount = "Demo@school.example"
	want.Limits.MaxMessageSize = 10 * MB
	want.Limits.MaxUploadSize = 1024
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
	if c.PrimaryDomain() != "school.example" || !c.HasDomain("SCHOOL.EXAMPLE") || c.HasDomain("other.example") {
		t.Errorf("PrimaryDomain/HasDomain wrong")
	}
}

func TestDemoAccountDefault(t *testing.T) {
	tests := []struct {
		doc  string
		want string
	}{
		{"", "demo@localhost"},
		{"[limits]\nmax_recipients = 5\n", "demo@localhost"},
		{"hostname = \"mail.school.example\"\ndomains = [\"school.example\"]\n", ""},
		{"domains = [\"school.example\", \"localhost\"]\n", "demo@localhost"},
		{"domains = [\"school.example\"]\ndemo_account = \"try@school.example\"\n", "try@school.example"},
	}
	for _, tt := range tests {
		c, err := Parse("kreide.toml", []byte(tt.doc))
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.doc, err)
			continue
		}
		if c.DemoAccount != tt.want {
			t.Errorf("Parse(%q).DemoAccount = %q, want %q", tt.doc, c.DemoAccount, tt.want)
		}
	}
	// Written explicitly, it must be in the domains.
	_, err := Parse("kreide.toml", []byte("domains = [\"school.example\"]\n\ndemo_account = \"demo@localhost\"\n"))
	if err == nil || err.Error() != `kreide.toml:3: demo_account: "demo@localhost" is not in one of the domains (school.example)` {
		t.Errorf("Parse = %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kreide.toml")
	if err := os.WriteFile(path, []byte("hostname = \"mail.school.example\"\n[listen]\nimapz = \"1\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || err.Error() != path+`:3: unknown key "listen.imapz" (did you mean "listen.imap"?)` {
		t.Errorf("Load = %v", err)
	}
	if err := os.WriteFile(path, []byte("hostname = \"mail.school.example\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil || c.Hostname != "mail.school.example" {
		t.Errorf("Load = %+v, %v", c, err)
	}
	if _, err := Load(filepath.Join(dir, "missing.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want an error wrapping os.ErrNotExist", err)
	}
}

// TestDecodeErrors checks that unknown keys, wrong types and syntax errors name the file, the line and
// the key.
func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // the error, line by line
		// wantPrefix replaces want where the parser's wording is not ours to fix.
		wantPrefix string
	}{
		{
			name: "unknown key in table",
			doc:  "hostname = \"localhost\"\n\n# comment\n[listen]\nimap = \":143\"\n\nimapz = \"1\"\n",
			want: []string{`kreide.toml:7: unknown key "listen.imapz" (did you mean "listen.imap"?)`},
		},
		{
			name: "unknown top-level key",
			doc:  "\n\nfrobnicate = true\n",
			want: []string{`kreide.toml:3: unknown key "frobnicate"`},
		},
		{
			name: "right key in the wrong table",
			doc:  "max_message_size = \"5 MiB\"\n",
			want: []string{`kreide.toml:1: unknown key "max_message_size" (did you mean "limits.max_message_size"?)`},
		},
		{
			name: "several unknown keys",
			doc:  "hostnam = \"x\"\n[tls]\nself_signed = true\nselfsigned = false\n",
			want: []string{
				`kreide.toml:1: unknown key "hostnam" (did you mean "hostname"?)`,
				`kreide.toml:4: unknown key "tls.selfsigned" (did you mean "tls.self_signed"?)`,
			},
		},
		{
			name: "unknown table",
			doc:  "\n[listen.extra]\nx = 1\n",
			want: []string{`kreide.toml:2: unknown table "listen.extra"`},
		},
		{
			name: "unknown dotted key",
			doc:  "auth.allow_plaintex = \"never\"\n",
			want: []string{`kreide.toml:1: unknown key "auth.allow_plaintex" (did you mean "auth.allow_plaintext"?)`},
		},
		{
			name: "unknown key in inline table",
			doc:  "hostname = \"localhost\"\nlisten = { imap = \":143\", pop3 = \":110\" }\n",
			want: []string{`kreide.toml:2: unknown key "listen.pop3"`},
		},
		{
			name: "string wanted",
			doc:  "hostname = \"localhost\"\n[listen]\nimap = 143\n",
			want: []string{`kreide.toml:3: listen.imap: wrong type: want a string in double quotes, got a TOML integer`},
		},
		{
			name: "list wanted",
			doc:  "domains = \"school.example\"\n",
			want: []string{`kreide.toml:1: domains: wrong type: want a list of strings such as ["a", "b"], got a TOML string`},
		},
		{
			name: "bool wanted",
			doc:  "[tls]\n\nself_signed = \"yes\"\n",
			want: []string{`kreide.toml:3: tls.self_signed: wrong type: want true or false, got a TOML string`},
		},
		{
			name: "integer wanted",
			doc:  "[limits]\nmax_recipients = \"100\"\n",
			want: []string{`kreide.toml:2: limits.max_recipients: wrong type: want a whole number, got a TOML string`},
		},
		{
			name: "float size",
			doc:  "[limits]\nmax_message_size = 1.5\n",
			want: []string{`kreide.toml:2: limits.max_message_size: wrong type: want a size such as "50 MiB", got a TOML float`},
		},
		{
			name: "boolean size",
			doc:  "limits = { max_upload_size = true }\n",
			want: []string{`kreide.toml:1: limits.max_upload_size: wrong type: want a size such as "50 MiB", got a TOML boolean`},
		},
		{
			name: "size wanted",
			doc:  "[limits]\nmax_message_size = [50]\n",
			want: []string{`kreide.toml:2: limits.max_message_size: wrong type: want a size such as "50 MiB", got a TOML array`},
		},
		{
			name: "date for a string",
			doc:  "data_dir = 1979-05-27\n",
			want: []string{`kreide.toml:1: data_dir: wrong type: want a string in double quotes, got a TOML local date`},
		},
		{
			name: "date for a size",
			doc:  "[limits]\ndefault_quota = 1979-05-27T07:32:00Z\n",
			want: []string{`kreide.toml:2: limits.default_quota: wrong type: want a size such as "50 MiB", got a TOML datetime`},
		},
		{
			name: "table wanted",
			doc:  "listen = \":143\"\n",
			want: []string{`kreide.toml:1: listen: wrong type: want a table, got a TOML string`},
		},
		{
			name: "bad size",
			doc:  "[limits]\ndefault_quota = \"2 GB\"\nmax_upload_size = \"4 gigs\"\n",
			want: []string{`kreide.toml:3: limits.max_upload_size: invalid size "4 gigs": unknown unit "gigs" (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)`},
		},
		{
			name: "integer too large",
			doc:  "[limits]\nmax_recipients = 99999999999999999999\n",
			want: []string{`kreide.toml:2: limits.max_recipients: decimal number is too large to fit in a 64-bit signed integer`},
		},
		{
			name: "duplicate key",
			doc:  "hostname = \"a\"\nhostname = \"b\"\n",
			want: []string{`kreide.toml:2: key hostname is already defined`},
		},
		{
			name: "syntax error",
			doc:  "hostname = \"localhost\"\ndata_dir =\n",
			want: []string{`kreide.toml:2: syntax error: unexpected character U+000A at start of value`},
		},
		{
			name:       "unterminated string",
			doc:        "\n\nhostname = \"localhost\n",
			wantPrefix: `kreide.toml:3: syntax error: `,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("kreide.toml", []byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", c)
			}
			if c != nil {
				t.Errorf("Parse returned a config along with the error")
			}
			if tt.wantPrefix != "" {
				if !strings.HasPrefix(err.Error(), tt.wantPrefix) {
					t.Errorf("error %q does not start with %q", err, tt.wantPrefix)
				}
				return
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("error:\n got %q\nwant %q", got, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.File != "kreide.toml" || ce.Line == 0 {
				t.Errorf("error is not an *Error with file and line: %#v", err)
			}
		})
	}
}

// TestValidate checks each rule: one change to Default() and the error it must give.
func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		key    string // the key the error must name (Error.Key)
		want   string // substring of the message; "" means the config is valid
	}{
		{"default", func(c *Config) {}, "", ""},
		{"hostname empty", func(c *Config) { c.Hostname = "" }, "hostname", "hostname: must be set"},
		{"hostname space", func(c *Config) { c.Hostname = "mail school" }, "hostname", `hostname: "mail school" is not a valid DNS name: ' ' is not allowed`},
		{"hostname underscore", func(c *Config) { c.Hostname = "mail_1.example" }, "hostname", "not a valid DNS name"},
		{"hostname IP", func(c *Config) { c.Hostname = "192.0.2.1" }, "hostname", "is an IP address"},
		{"hostname IPv6", func(c *Config) { c.Hostname = "::1" }, "hostname", "is an IP address"},
		{"hostname trailing dot", func(c *Config) { c.Hostname = "mail.example." }, "hostname", "empty label"},
		{"hostname hyphen", func(c *Config) { c.Hostname = "-mail.example" }, "hostname", "starts or ends with '-'"},
		{"hostname long label", func(c *Config) { c.Hostname = strings.Repeat("a", 64) + ".example" }, "hostname", "longer than 63"},
		{"hostname too long", func(c *Config) { c.Hostname = strings.Repeat("abcdefghi.", 26) + "example" }, "hostname", "longer than 253"},
		{"hostname numeric tld", func(c *Config) { c.Hostname = "mail.123" }, "hostname", "all digits"},
		{"hostname unicode", func(c *Config) { c.Hostname = "schüle.example" }, "hostname", "xn--"},
		{"hostname mixed case ok", func(c *Config) { c.Hostname = "Mail.School-1.Example" }, "", ""},
		{"hostname digits first ok", func(c *Config) { c.Hostname = "1und1.example" }, "", ""},
		{"no domains", func(c *Config) { c.Domains = nil }, "domains", "domains: must list at least one"},
		{"empty domain", func(c *Config) { c.Domains = []string{"localhost", ""} }, "domains", "empty domain"},
		{"bad domain", func(c *Config) { c.Domains = []string{"localhost", "bad domain"} }, "domains", `domains: "bad domain" is not a valid DNS name`},
		{"duplicate domain", func(c *Config) { c.Domains = []string{"localhost", "LOCALHOST"} }, "domains", "listed twice"},
		{"data_dir empty", func(c *Config) { c.DataDir = " " }, "data_dir", "data_dir: must be set"},
		{"demo_account not an address", func(c *Config) { c.DemoAccount = "demo" }, "demo_account", `demo_account: "demo" is not an e-mail address`},
		{"demo_account two @", func(c *Config) { c.DemoAccount = "a@b@localhost" }, "demo_account", "not an e-mail address"},
		{"demo_account bad local part", func(c *Config) { c.DemoAccount = "de mo@localhost" }, "demo_account", "not an e-mail address"},
		{"demo_account other domain", func(c *Config) { c.DemoAccount = "demo@elsewhere.example" }, "demo_account", "is not in one of the domains (localhost)"},
		{"demo_account empty ok", func(c *Config) { c.DemoAccount = "" }, "", ""},
		{"demo_account second domain ok", func(c *Config) {
			c.Domains = []string{"localhost", "school.example"}
			c.DemoAccount = "first.last+tag@School.Example"
		}, "", ""},
		{"listen no port", func(c *Config) { c.Listen.IMAP = "127.0.0.1" }, "listen.imap", `listen.imap: "127.0.0.1" is not host:port`},
		{"listen bad port", func(c *Config) { c.Listen.HTTPS = ":https" }, "listen.https", `invalid port "https"`},
		{"listen port too big", func(c *Config) { c.Listen.SMTP = ":65536" }, "listen.smtp", "invalid port"},
		{"listen bad host", func(c *Config) { c.Listen.Submission = "not a host:587" }, "listen.submission", "invalid host"},
		{"listen IPv6 without brackets", func(c *Config) { c.Listen.IMAPS = "::1:993" }, "listen.imaps", "is not host:port"},
		{"listen duplicate", func(c *Config) { c.Listen.IMAPS = c.Listen.IMAP }, "listen.imaps", "already used by listen.imap"},
		{"listen admin bad", func(c *Config) { c.Listen.Admin = "9100" }, "listen.admin", "is not host:port"},
		{"listen forms ok", func(c *Config) {
			c.Listen = Listen{IMAP: ":143", IMAPS: "[::]:993", SMTP: "0.0.0.0:25", Submission: "localhost:587",
				Submissions: "[::1]:465", HTTPS: "127.0.0.1:0", Admin: "127.0.0.1:0"}
		}, "", ""},
		{"all listeners off ok", func(c *Config) { c.Listen = Listen{}; c.TLS.SelfSigned = false }, "", ""},
		{"cert without key", func(c *Config) { c.TLS.CertFile = "/etc/cert.pem" }, "tls.key_file", "tls.key_file: must be set too when tls.cert_file is set"},
		{"key without cert", func(c *Config) { c.TLS.KeyFile = "/etc/key.pem" }, "tls.cert_file", "tls.cert_file: must be set too"},
		{"cert files ok", func(c *Config) { c.TLS = TLS{CertFile: "c.pem", KeyFile: "k.pem"} }, "", ""},
		{"no certificate", func(c *Config) { c.TLS.SelfSigned = false }, "tls",
			"listen.imaps, listen.submissions, listen.https need a TLS certificate: set tls.acme = true, or tls.cert_file and tls.key_file, or tls.self_signed = true"},
		{"no certificate, one listener", func(c *Config) {
			c.TLS.SelfSigned = false
			c.Listen.IMAPS, c.Listen.Submissions = "", ""
		}, "tls", "listen.https needs a TLS certificate"},
		{"no certificate, STARTTLS on loopback ok", func(c *Config) {
			c.TLS.SelfSigned = false
			c.Listen.IMAPS, c.Listen.Submissions, c.Listen.HTTPS = "", "", ""
		}, "", ""},
		{"no certificate, STARTTLS on the network", func(c *Config) {
			c.TLS.SelfSigned = false
			c.Listen.IMAPS, c.Listen.Submissions, c.Listen.HTTPS = "", "", ""
			c.Listen.IMAP = ":143"
		}, "tls", "listen.imap needs a TLS certificate"},
		{"no certificate, plain SMTP ok", func(c *Config) {
			c.TLS.SelfSigned = false
			c.Listen = Listen{SMTP: ":25"}
		}, "", ""},
		{"acme on localhost", func(c *Config) { c.TLS.ACME = true }, "tls.acme", `hostname "localhost" is not a public DNS name`},
		{"acme on a test name", func(c *Config) { c.TLS.ACME = true; c.Hostname = "mail.school.example" }, "tls.acme", "not a public DNS name"},
		{"acme ok", func(c *Config) { c.TLS.ACME = true; c.Hostname = "mail.kreide-schule.de"; c.TLS.SelfSigned = false }, "", ""},
		{"acme with cert files", func(c *Config) {
			c.TLS = TLS{ACME: true, CertFile: "c.pem", KeyFile: "k.pem"}
			c.Hostname = "mail.kreide-schule.de"
		}, "tls.acme", "use one or the other"},
		{"acme without https", func(c *Config) {
			c.TLS = TLS{ACME: true}
			c.Hostname = "mail.kreide-schule.de"
			c.Listen.HTTPS = ""
		}, "tls.acme", "needs listen.https"},
		{"acme_email bad", func(c *Config) { c.TLS.ACMEEmail = "admin" }, "tls.acme_email", `tls.acme_email: "admin" is not an e-mail address`},
		{"acme_email ok", func(c *Config) { c.TLS.ACMEEmail = "admin@school.example" }, "", ""},
		{"allow_plaintext bad", func(c *Config) { c.Auth.AllowPlaintext = "always" }, "auth.allow_plaintext", `auth.allow_plaintext: "always" is not one of "loopback" or "never"`},
		{"allow_plaintext empty", func(c *Config) { c.Auth.AllowPlaintext = "" }, "auth.allow_plaintext", "is not one of"},
		{"allow_plaintext never ok", func(c *Config) { c.Auth.AllowPlaintext = PlaintextNever }, "", ""},
		{"max_message_size zero", func(c *Config) { c.Limits.MaxMessageSize = 0 }, "limits.max_message_size", "limits.max_message_size: must be more than 0"},
		{"max_recipients negative", func(c *Config) { c.Limits.MaxRecipients = -1 }, "limits.max_recipients", "must be more than 0 (got -1)"},
		{"default_quota negative", func(c *Config) { c.Limits.DefaultQuota = -1 }, "limits.default_quota", "must be more than 0"},
		{"max_conns_per_ip zero", func(c *Config) { c.Limits.MaxConnsPerIP = 0 }, "limits.max_conns_per_ip", "must be more than 0"},
		{"max_upload_size zero", func(c *Config) { c.Limits.MaxUploadSize = 0 }, "limits.max_upload_size", "must be more than 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error containing %q", tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("want exactly one problem, got:\n%v", err)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != tt.key {
				t.Errorf("error %#v does not name key %q", err, tt.key)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %q, want it to contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.key) {
				t.Errorf("message %q does not name the key %q", err, tt.key)
			}
		})
	}
}

func TestValidateReportsAllProblems(t *testing.T) {
	c := Default()
	c.Hostname = ""
	c.Limits.MaxRecipients = 0
	err := c.Validate()
	if err == nil || len(strings.Split(err.Error(), "\n")) != 2 {
		t.Fatalf("Validate() = %v, want two problems", err)
	}
}

// TestValidationErrorLines checks that Parse puts the line of the offending key in front of semantic
// errors, and only the file name when the value is a default.
func TestValidationErrorLines(t *testing.T) {
	doc := `# school server
hostname = "mail.school.example"
domains = ["school.example"]

[listen]
imap = ":143"
imaps = "no-port"

[tls]
self_signed = false

[limits]
max_recipients = 0
`
	_, err := Parse("kreide.toml", []byte(doc))
	want := []string{
		`kreide.toml:7: listen.imaps: "no-port" is not host:port (missing port in address), e.g. "0.0.0.0:993", ":993" or "[::1]:993"`,
		`kreide.toml:9: listen.imap, listen.submissions, listen.https need a TLS certificate: set tls.acme = true, or tls.cert_file and tls.key_file, or tls.self_signed = true`,
		`kreide.toml:13: limits.max_recipients: must be more than 0 (got 0)`,
	}
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Dotted keys and inline tables have lines too.
	doc = "hostname = \"x.example\"\ndomains = [\"x.example\"]\ndemo_account = \"\"\nauth.allow_plaintext = \"sometimes\"\nlimits = {\n max_recipients = 1, max_conns_per_ip = -3 }\n"
	_, err = Parse("k.toml", []byte(doc))
	want = []string{
		`k.toml:4: auth.allow_plaintext: "sometimes" is not one of "loopback" or "never"`,
		`k.toml:6: limits.max_conns_per_ip: must be more than 0 (got -3)`,
	}
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSuggestKey(t *testing.T) {
	tests := map[string]string{
		"listen.imapz":     "listen.imap",
		"listen.smpt":      "listen.smtp",
		"tls.certfile":     "tls.cert_file",
		"imaps":            "listen.imaps",
		"limits.quota":     "",
		"completely_wrong": "",
	}
	for in, want := range tests {
		if got := suggestKey(in); got != want {
			t.Errorf("suggestKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestQuote(t *testing.T) {
	if q := quote(""); q != `""` {
		t.Errorf("quote(\"\") = %s", q)
	}
	re := regexp.MustCompile(`^"[^\x00-\x1f\x7f]*"$`)
	for _, s := range []string{"plain", `a"b`, `a\b`, "tab\there", "nl\nx", "\x00\x01\x7f", "ünïcödé", "bad\xffutf8"} {
		q := quote(s)
		if !re.MatchString(q) {
			t.Errorf("quote(%q) = %q contains control characters", s, q)
		}
		c, err := Parse("q.toml", []byte("data_dir = "+q+"\n"))
		if err != nil {
			t.Errorf("quote(%q) = %s does not parse: %v", s, q, err)
			continue
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); c.DataDir != want {
			t.Errorf("quote(%q) parsed back as %q", s, c.DataDir)
		}
	}
}
