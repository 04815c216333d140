package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kreide/config"
	"kreide/store"
)

func TestSetup(t *testing.T) {
	base := t.TempDir()
	etc, data := filepath.Join(base, "etc"), filepath.Join(base, "data")
	out := ok(t, "password one\n", "setup", "school.example", "Mail.School.Example",
		"-dir", etc, "-data", data, "-acme=false", "-admin", "it@school.example").stdout
	code := recoveryCode(t, out)

	// The config parses, validates, and is the one asked for.
	path := filepath.Join(etc, "kreide.toml")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	want := config.Listen{IMAP: ":143", IMAPS: ":993", SMTP: ":25", Submission: ":587", Submissions: ":465", HTTPS: ":443"}
	if cfg.Hostname != "mail.school.example" || strings.Join(cfg.Domains, ",") != "school.example" || cfg.DataDir != data ||
		cfg.DemoAccount != "" || cfg.Listen != want || !cfg.TLS.SelfSigned || cfg.TLS.ACME {
		t.Errorf("config: %+v", cfg)
	}
	text, _ := os.ReadFile(path)
	if !strings.Contains(string(text), "# The server's public DNS name") {
		t.Errorf("the config file has no comments:\n%s", text)
	}

	// The account logs in, and receives postmaster@ and abuse@.
	d, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := d.Login(ctx, "it@school.example", "password one", store.ScopeIMAP)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	a.Close()
	for _, alias := range []string{"postmaster@school.example", "abuse@school.example"} {
		if info, err := d.Lookup(ctx, alias); err != nil || info.Login != "it@school.example" {
			t.Errorf("%s: %v %+v", alias, err, info)
		}
	}
	d.Close()
	if code == "" {
		t.Error("no recovery code")
	}

	// It says what to publish and what to install.
	for _, want := range []string{
		"Created the account it@school.example (it also receives the mail for postmaster@school.example and abuse@school.example)",
		"school.example.\tIN\tMX\t10 mail.school.example.",
		"_dmarc.school.example.\tIN\tTXT",
		"ExecStart=/usr/local/bin/kreide serve -config " + path,
		"ReadWritePaths=" + data,
		"AmbientCapabilities=CAP_NET_BIND_SERVICE",
		"systemctl enable --now kreide",
		"kreide dns check -config " + path,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("setup output lacks %q:\n%s", want, out)
		}
	}

	// Nothing that exists is changed.
	fails(t, 1, "already exists", "password two\n", "setup", "school.example", "mail.school.example", "-dir", etc, "-data", data, "-acme=false")
	fails(t, 1, "already has 1 account", "password two\n", "setup", "school.example", "mail.school.example",
		"-dir", filepath.Join(base, "etc2"), "-data", data, "-acme=false")
	if _, err := os.Stat(filepath.Join(base, "etc2", "kreide.toml")); !os.IsNotExist(err) {
		t.Errorf("a failed setup wrote a config: %v", err)
	}
	// Mistakes in the command line.
	fails(t, 2, "is not in the domain school.example", "password two\n", "setup", "school.example", "mail.school.example",
		"-dir", filepath.Join(base, "etc3"), "-data", filepath.Join(base, "data3"), "-acme=false", "-admin", "it@other.example")
	fails(t, 2, "hostname", "password two\n", "setup", "school.example", "mail_1.school.example",
		"-dir", filepath.Join(base, "etc3"), "-data", filepath.Join(base, "data3"), "-acme=false")
	// Let's Encrypt (the default) needs a public name.
	r := fails(t, 2, "not a public DNS name", "password two\n", "setup", "school.example", "mail.school.example",
		"-dir", filepath.Join(base, "etc3"), "-data", filepath.Join(base, "data3"))
	if !strings.Contains(r.stderr, "-acme=false") {
		t.Errorf("the ACME error does not point to -acme=false: %s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(base, "data3")); !os.IsNotExist(err) {
		t.Errorf("a refused setup created the data dir: %v", err)
	}
}

func TestSetupACME(t *testing.T) {
	base := t.TempDir()
	etc := filepath.Join(base, "etc")
	out := ok(t, "password one\n", "setup", "kreide-schule.de", "mail.kreide-schule.de", "-dir", etc, "-data", filepath.Join(base, "data")).stdout
	cfg, err := config.Load(filepath.Join(etc, "kreide.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.TLS.ACME || cfg.TLS.SelfSigned || cfg.TLS.ACMEEmail != "admin@kreide-schule.de" || cfg.Listen.HTTPS != ":443" {
		t.Errorf("tls: %+v", cfg.TLS)
	}
	if !strings.Contains(out, "Let's Encrypt") {
		t.Errorf("setup does not mention Let's Encrypt:\n%s", out)
	}
}

// dist/systemd/kreide.service is the unit setup prints for the default paths.
func TestSystemdUnit(t *testing.T) {
	dist, err := os.ReadFile("../../dist/systemd/kreide.service")
	if err != nil {
		t.Fatal(err)
	}
	if got := systemdUnit("/usr/local/bin/kreide", "/etc/kreide/kreide.toml", "/var/lib/kreide"); got != string(dist) {
		t.Errorf("dist/systemd/kreide.service differs from what kreide setup prints:\n%s", got)
	}
	for _, want := range []string{
		"User=kreide", "StateDirectory=kreide", "AmbientCapabilities=CAP_NET_BIND_SERVICE", "NoNewPrivileges=yes",
		"ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes", "ProtectKernelTunables=yes",
		"ProtectKernelModules=yes", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "SystemCallFilter=@system-service",
		"MemoryDenyWriteExecute=yes",
	} {
		if !strings.Contains(string(dist), "\n"+want+"\n") {
			t.Errorf("the unit lacks %s", want)
		}
	}
}
