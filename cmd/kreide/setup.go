package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"kreide/config"
	"kreide/internal/admin"
	"kreide/store"
)

func setupCommand() *command {
	return &command{
		name:     "setup",
		args:     "DOMAIN HOSTNAME",
		nargs:    2,
		noConfig: true,
		short:    "set up a new server: config file, first account, DNS records, service",
		long: `Sets up kreide on a new server in one go, for the mail domain DOMAIN (e.g.
school.example) served by this machine under the DNS name HOSTNAME (e.g.
mail.school.example):

  - writes a commented config file, <dir>/kreide.toml: standard ports (25,
    143, 993, 465, 587, 443), data in /var/lib/kreide, and a certificate from
    Let's Encrypt (-acme=false: a self-signed one instead);
  - creates the first account (-admin, default admin@DOMAIN), which also gets
    postmaster@DOMAIN and abuse@DOMAIN, and prints its recovery code. The
    password is asked twice on a terminal, or read as one line from standard
    input;
  - prints the DNS records to publish and the systemd service to install.

It changes nothing that exists: an existing config file or a data dir with
accounts stop it.

Example:
  kreide setup school.example mail.school.example
  kreide setup school.example mail.school.example -admin it@school.example
  printf '%s\n' 'a long password' | kreide setup school.example mail.school.example -dir ./etc -data ./data -acme=false`,
		flags: func(fs *flag.FlagSet) {
			fs.String("dir", "/etc/kreide", "write the config file kreide.toml into `DIR`")
			fs.String("data", "/var/lib/kreide", "keep the data in `DIR` (the systemd unit's StateDirectory is /var/lib/kreide)")
			fs.String("admin", "", "the first account's `ADDRESS` (default admin@DOMAIN)")
			fs.Bool("acme", true, "get the certificate from Let's Encrypt (needs port 443 reachable from the internet)")
			fs.String("bin", "/usr/local/bin/kreide", "where the kreide program is installed, for the systemd unit (`PATH`)")
		},
		run: setupRun,
	}
}

// setupConfig is the config setup writes.
func setupConfig(domain, hostname, dataDir, adminAddr string, acme bool) *config.Config {
	c := exampleConfig()
	c.Hostname = strings.ToLower(strings.TrimSuffix(hostname, "."))
	c.Domains = []string{strings.ToLower(strings.TrimSuffix(domain, "."))}
	c.DataDir = dataDir
	if acme {
		c.TLS.ACME = true
		c.TLS.SelfSigned = false
		c.TLS.ACMEEmail = adminAddr
	}
	return c
}

func setupRun(ctx context.Context, e *env, args []string) error {
	domain, hostname := args[0], args[1]
	acme := e.flag("acme") == "true"
	dataDir, err := filepath.Abs(e.flag("data"))
	if err != nil {
		return err
	}
	confDir, err := filepath.Abs(e.flag("dir"))
	if err != nil {
		return err
	}
	confPath := filepath.Join(confDir, "kreide.toml")

	adminAddr := e.flag("admin")
	if adminAddr == "" {
		adminAddr = "admin@" + strings.ToLower(domain)
	}
	adminAddr, err = store.NormalizeAddress(adminAddr)
	if err != nil {
		return usagef("-admin: %s", strings.TrimPrefix(err.Error(), store.ErrInvalid.Error()+": "))
	}
	cfg := setupConfig(domain, hostname, dataDir, adminAddr, acme)
	if err := cfg.Validate(); err != nil {
		var msgs []string
		for _, p := range admin.Problems(err) {
			msgs = append(msgs, strings.Replace(p, "tls.self_signed", "-acme=false", 1))
		}
		return usagef("%s", strings.Join(msgs, "\n  "))
	}
	if at := strings.LastIndexByte(adminAddr, '@'); !cfg.HasDomain(adminAddr[at+1:]) {
		return usagef("-admin %s is not in the domain %s", adminAddr, cfg.PrimaryDomain())
	}

	// Nothing that exists is changed.
	if _, err := os.Stat(confPath); err == nil {
		return fmt.Errorf("%s already exists: kreide setup is for a new server; edit that file (kreide config check -config %s), or move it away to start over", confPath, confPath)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}

	pw, err := e.newPassword(fmt.Sprintf("Password for %s: ", adminAddr))
	if err != nil {
		return err
	}

	// The data dir, the first account, its aliases and the DKIM keys.
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	dir, err := admin.OpenDirectory(ctx, cfg)
	if err != nil {
		return err
	}
	created, recs, err := setupStore(ctx, dir, cfg, adminAddr, pw)
	if cerr := dir.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}

	// The config, last: once it exists, setup has run.
	var buf strings.Builder
	if err := cfg.WriteExample(&buf); err != nil {
		return err
	}
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return err
	}
	if err := writeFileNew(confPath, []byte(buf.String()), 0o644); err != nil {
		return err
	}

	owner := giveToServiceUser(dataDir)
	printSetup(e, cfg, confPath, created, recs, owner)
	return nil
}

// setupAccount is the first account as setup created it.
type setupAccount struct {
	login, recoveryCode string
	aliases             []string
}

// setupStore creates the first account with its aliases and the domain's DKIM
// keys (through admin.Execute, like every admin command), in a data dir
// without accounts.
func setupStore(ctx context.Context, dir *store.Directory, cfg *config.Config, addr, password string) (setupAccount, []admin.DNSRecord, error) {
	var acct setupAccount
	n, err := dir.CountAccounts(ctx)
	if err != nil {
		return acct, nil, err
	}
	if n > 0 {
		return acct, nil, fmt.Errorf("data dir %s already has %d account(s): kreide setup is for a new server (add accounts with kreide user add)", cfg.DataDir, n)
	}
	resp := admin.Execute(ctx, dir, admin.Request{Op: admin.OpUserAdd, Address: addr, Password: password})
	if resp.Error != "" {
		return acct, nil, errors.New(resp.Error)
	}
	acct.login, acct.recoveryCode = resp.Account.Login, resp.RecoveryCode
	// RFC 5321 section 4.5.1 (postmaster) and RFC 2142 (abuse): other
	// servers' administrators write there.
	for _, local := range []string{"postmaster", "abuse"} {
		alias := local + "@" + cfg.PrimaryDomain()
		if alias == acct.login {
			continue
		}
		if err := dir.AddAlias(ctx, acct.login, alias); err != nil {
			return acct, nil, fmt.Errorf("adding the alias %s: %w", alias, err)
		}
		acct.aliases = append(acct.aliases, alias)
	}
	dns := admin.Execute(ctx, dir, admin.Request{Op: admin.OpDNSRecords, Hostname: cfg.Hostname})
	if dns.Error != "" {
		return acct, nil, errors.New(dns.Error)
	}
	return acct, dns.Records, nil
}

// writeFileNew writes a file that must not exist yet, synced.
func writeFileNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// serviceUser is the user the systemd unit runs kreide as.
const serviceUser = "kreide"

// giveToServiceUser hands the data dir to the service user when setup runs
// as root and that user exists, and says who owns it now ("" when nothing
// was changed).
func giveToServiceUser(dataDir string) string {
	if os.Geteuid() != 0 {
		return ""
	}
	u, err := user.Lookup(serviceUser)
	if err != nil {
		return ""
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return ""
	}
	err = filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
	if err != nil {
		return ""
	}
	return serviceUser
}

func printSetup(e *env, cfg *config.Config, confPath string, acct setupAccount, recs []admin.DNSRecord, owner string) {
	w := e.stdout
	cert := "a self-signed certificate (mail programs warn until it is accepted)"
	if cfg.TLS.ACME {
		cert = "a certificate from Let's Encrypt, obtained at the first start"
	}
	fmt.Fprintf(w, "Wrote %s: hostname %s, domain %s, data in %s, %s.\n\n", confPath, cfg.Hostname, cfg.PrimaryDomain(), cfg.DataDir, cert)
	fmt.Fprintf(w, "Created the account %s", acct.login)
	if len(acct.aliases) > 0 {
		fmt.Fprintf(w, " (it also receives the mail for %s)", strings.Join(acct.aliases, " and "))
	}
	fmt.Fprintf(w, ".\n\n")
	printRecoveryCode(e, acct.login, acct.recoveryCode)

	fmt.Fprintf(w, "\n==== 1. DNS: publish these records at your DNS provider ====\n\n")
	writeZone(w, cfg.Hostname, recs)

	bin := e.flag("bin")
	fmt.Fprintf(w, "\n==== 2. Install the service (as root) ====\n\n")
	if owner == "" {
		fmt.Fprintf(w, "  useradd --system --user-group --home-dir /var/lib/kreide --shell /usr/sbin/nologin %s\n", serviceUser)
		fmt.Fprintf(w, "  chown -R %s:%s %s\n", serviceUser, serviceUser, cfg.DataDir)
	}
	if exe, err := os.Executable(); err == nil && exe != bin {
		fmt.Fprintf(w, "  install -m 0755 %s %s\n", exe, bin)
	}
	fmt.Fprintf(w, "  # save the unit below as /etc/systemd/system/kreide.service, then:\n")
	fmt.Fprintf(w, "  systemctl daemon-reload\n  systemctl enable --now kreide\n  journalctl -u kreide -f     # its log\n\n")
	fmt.Fprint(w, systemdUnit(bin, confPath, cfg.DataDir))

	fmt.Fprintf(w, "\n==== 3. Check ====\n\n")
	fmt.Fprintf(w, "  kreide dns check -config %s   # once the DNS records are published\n", confPath)
	fmt.Fprintf(w, "  kreide user add someone@%s -config %s\n", cfg.PrimaryDomain(), confPath)
	fmt.Fprintf(w, "  kreide backup /srv/backup/kreide-$(date +%%F) -config %s\n", confPath)
	if cfg.TLS.ACME {
		fmt.Fprintf(w, "\nLet's Encrypt checks the server on port 443 of %s: publish the DNS records\nand open ports 25, 143, 443, 465, 587 and 993 in the firewall before the first start.\n", cfg.Hostname)
	}
}

// stateDir is the data dir the systemd unit gives kreide (StateDirectory=kreide).
const stateDir = "/var/lib/kreide"

// systemdUnit is dist/systemd/kreide.service for these paths (a test checks
// that the defaults give that file).
func systemdUnit(bin, confPath, dataDir string) string {
	unit := strings.NewReplacer("@BIN@", bin, "@CONFIG@", confPath).Replace(systemdUnitTemplate)
	if dataDir != stateDir {
		unit = strings.Replace(unit, "StateDirectoryMode=0700\n",
			"StateDirectoryMode=0700\n# The data dir is elsewhere: kreide must be able to write there.\nReadWritePaths="+dataDir+"\n", 1)
	}
	return unit
}

const systemdUnitTemplate = `# kreide: groupware server for schools (mail, calendars, contacts, files).
#
# Install:
#   useradd --system --user-group --home-dir /var/lib/kreide --shell /usr/sbin/nologin kreide
#   install -m 0755 kreide @BIN@
#   cp kreide.service /etc/systemd/system/ && systemctl daemon-reload
#   systemctl enable --now kreide
#
# kreide setup writes /etc/kreide/kreide.toml and prints this unit with its paths.
# Admin commands (kreide user ..., kreide backup ...) reach the running server
# through /var/lib/kreide/control.sock: run them as root or as kreide.

[Unit]
Description=kreide groupware server (mail, calendars, contacts, files)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=kreide
Group=kreide
ExecStart=@BIN@ serve -config @CONFIG@
Restart=on-failure
RestartSec=5s
TimeoutStopSec=30s

# The data dir: created by systemd, owned by kreide, for kreide only.
StateDirectory=kreide
StateDirectoryMode=0700
UMask=0077
LimitNOFILE=65536

# Ports below 1024 (25, 143, 443, 465, 587, 993) without running as root.
AmbientCapabilities=CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
NoNewPrivileges=yes

# Everything but the data dir is read-only or hidden.
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RemoveIPC=yes

# Only what a network server needs of the kernel.
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
`
