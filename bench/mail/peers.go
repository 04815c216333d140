package mail

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// errNotInstalled means a peer's programs are missing, errNeedsRoot that
// it cannot run as this user: the suite then reports kreide alone, with a
// note.
var (
	errNotInstalled = errors.New("not installed")
	errNeedsRoot    = errors.New("needs root (its master process runs as root)")
)

// --- Dovecot ---

// dovecotServer is Dovecot 2.3 as an administrator would set it up for a
// school on one machine: virtual users in a passwd-file (passdb and userdb),
// SHA512-CRYPT password hashes (doveadm pw -s SHA512-CRYPT, a common choice
// for a passwd-file) with the auth cache on and hashes verified in the auth
// workers (both cores), Maildir, mail_fsync = optimized (the default), and
// an LMTP listener for Postfix. Run as root it uses the usual
// dovecot/dovenull users and stores mail as nobody:nogroup; otherwise it runs
// rootless, everything as the current user.
//
// Dovecot verifies the password hash at every login, cached or not (the
// auth cache saves the lookup, not the hash), so the scheme matters for a
// workload that logs in often: setScheme switches to Argon2id, kreide's
// kind of hash, for a second measurement.
type dovecotServer struct {
	*proc
	dir                string
	imapAddr, lmtpAddr string
	uid, gid           int
	users              []string
	password           string
}

// maildir is the Maildir of u@domain.
func (d *dovecotServer) maildir(u string) string {
	local, domain, _ := strings.Cut(u, "@")
	return filepath.Join(d.dir, "mail", domain, local, "Maildir")
}

// prepareDovecot writes Dovecot's config and users into dir and makes the
// Maildirs; the caller may fill them before start.
func prepareDovecot(ctx context.Context, dir string, users []string, password string) (*dovecotServer, error) {
	if _, ok := findProgram("dovecot"); !ok {
		return nil, fmt.Errorf("dovecot %w", errNotInstalled)
	}
	if _, ok := findProgram("doveadm"); !ok {
		return nil, fmt.Errorf("doveadm %w", errNotInstalled)
	}
	addrs, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	d := &dovecotServer{dir: dir, imapAddr: addrs[0], lmtpAddr: addrs[1], uid: os.Getuid(), gid: os.Getgid()}
	var identity string
	if os.Geteuid() == 0 {
		nobody, err := user.Lookup("nobody")
		if err != nil {
			return nil, err
		}
		d.uid, _ = strconv.Atoi(nobody.Uid)
		d.gid, _ = strconv.Atoi(nobody.Gid)
		identity = "default_internal_user = dovecot\ndefault_login_user = dovenull\n"
	} else {
		me, err := user.Current()
		if err != nil {
			return nil, err
		}
		identity = fmt.Sprintf("default_internal_user = %s\ndefault_login_user = %s\nfirst_valid_uid = %d\n"+
			"service anvil {\n  chroot =\n}\nservice imap-login {\n  chroot =\n}\n", me.Username, me.Username, d.uid)
	}
	// The processes run as other users: they must reach the directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`# kreide bench: Dovecot for a school on one machine.
protocols = imap lmtp
listen = 127.0.0.1
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_cache_size = 10M
auth_cache_verify_password_with_worker = yes
mail_location = maildir:~/Maildir
mail_fsync = optimized
%[2]s
passdb {
  driver = passwd-file
  args = %[1]s/users
}
userdb {
  driver = passwd-file
  args = %[1]s/users
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[3]s
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = %[4]s
  }
}
!include_try %[1]s/tuning.conf
`, dir, identity, portOf(d.imapAddr), portOf(d.lmtpAddr))
	if err := os.WriteFile(d.conf(), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	d.users, d.password = users, password
	for _, u := range users {
		if err := os.MkdirAll(d.maildir(u), 0o700); err != nil {
			return nil, err
		}
	}
	if err := d.writeUsers(ctx, "SHA512-CRYPT"); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *dovecotServer) conf() string { return filepath.Join(d.dir, "dovecot.conf") }

// writeUsers writes the passwd-file with every user's password hashed with
// scheme (doveadm pw), replacing the old one at once; Dovecot reads it again
// when it changes.
func (d *dovecotServer) writeUsers(ctx context.Context, scheme string) error {
	doveadm, _ := findProgram("doveadm")
	var lines []string
	for _, u := range d.users {
		out, err := exec.CommandContext(ctx, doveadm, "-c", d.conf(), "pw", "-s", scheme, "-p", d.password).CombinedOutput()
		if err != nil {
			return fmt.Errorf("doveadm pw -s %s: %v: %s", scheme, err, out)
		}
		home := filepath.Dir(d.maildir(u))
		lines = append(lines, fmt.Sprintf("%s:%s:%d:%d::%s::", u, strings.TrimSpace(string(out)), d.uid, d.gid, home))
	}
	tmp := filepath.Join(d.dir, "users.new")
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(d.dir, "users"))
}

// setScheme re-hashes every password with scheme and empties the auth
// cache of the running server.
func (d *dovecotServer) setScheme(ctx context.Context, scheme string) error {
	if err := d.writeUsers(ctx, scheme); err != nil {
		return err
	}
	doveadm, _ := findProgram("doveadm")
	if out, err := exec.CommandContext(ctx, doveadm, "-c", d.conf(), "auth", "cache", "flush").CombinedOutput(); err != nil {
		return fmt.Errorf("doveadm auth cache flush: %v: %s", err, out)
	}
	return nil
}

// start hands the mail to the mail user and starts `dovecot -F`.
func (d *dovecotServer) start(ctx context.Context) error {
	if err := chownTree(filepath.Join(d.dir, "mail"), d.uid, d.gid); err != nil {
		return err
	}
	bin, _ := findProgram("dovecot")
	p, err := startProc("dovecot", exec.Command(bin, "-F", "-c", d.conf()), filepath.Join(d.dir, "dovecot.stderr"))
	if err != nil {
		return err
	}
	d.proc = p
	if err := p.waitGreeting(ctx, d.imapAddr, "* OK"); err != nil {
		p.stop()
		b, _ := os.ReadFile(filepath.Join(d.dir, "dovecot.log"))
		return fmt.Errorf("%w\n%s", err, lastLines(string(b), 15))
	}
	return nil
}

// restartTuned restarts Dovecot in the login "high-performance mode" of
// its performance tuning guide: long-lived imap-login processes, one per
// core, each serving many connections, instead of a new process for every
// connection (the default, "high-security mode").
func (d *dovecotServer) restartTuned(ctx context.Context) error {
	d.stop()
	tuning := "service imap-login {\n  service_count = 0\n  process_min_avail = 2\n}\n"
	if err := os.WriteFile(filepath.Join(d.dir, "tuning.conf"), []byte(tuning), 0o644); err != nil {
		return err
	}
	return d.start(ctx)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// chownTree gives dir and everything under it to uid:gid (as root only).
func chownTree(dir string, uid, gid int) error {
	if os.Geteuid() != 0 {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// --- Postfix ---

// postfixServer is Postfix as the MX in front of Dovecot: the mail domain
// as a virtual mailbox domain, its recipients listed (texthash, so unknown
// ones are refused during the SMTP dialogue), delivery over LMTP to
// Dovecot, no chroot, its own config, queue and data directories in the
// temporary directory, and the SMTP listener on a free loopback port.
// Postfix's master must run as root.
type postfixServer struct {
	*proc
	dir      string
	smtpAddr string
}

func startPostfix(ctx context.Context, dir string, users []string, lmtpAddr string) (*postfixServer, error) {
	bin, ok := findProgram("postfix")
	if !ok {
		return nil, fmt.Errorf("postfix %w", errNotInstalled)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("postfix %w", errNeedsRoot)
	}
	addrs, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	p := &postfixServer{dir: dir, smtpAddr: addrs[0]}
	conf := filepath.Join(dir, "postfix")
	for _, d := range []string{conf, filepath.Join(dir, "spool")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	var vmailbox strings.Builder
	for _, u := range users {
		fmt.Fprintf(&vmailbox, "%s ok\n", u)
	}
	mainCf := fmt.Sprintf(`# kreide bench: Postfix as the MX, delivering to Dovecot over LMTP.
compatibility_level = 3.6
queue_directory = %[1]s/spool
data_directory = %[1]s/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.%[2]s
mydomain = %[2]s
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
virtual_mailbox_domains = %[2]s
virtual_mailbox_maps = texthash:%[3]s/vmailbox
virtual_transport = lmtp:inet:%[4]s
smtpd_banner = $myhostname ESMTP
biff = no
maillog_file = %[1]s/postfix.log
maillog_file_prefixes = %[1]s
`, dir, benchDomain, conf, lmtpAddr)
	// master.cf: the services the SMTP-to-LMTP path needs, unchrooted.
	masterCf := fmt.Sprintf(`%s inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`, p.smtpAddr)
	for name, content := range map[string]string{"main.cf": mainCf, "master.cf": masterCf, "vmailbox": vmailbox.String()} {
		if err := os.WriteFile(filepath.Join(conf, name), []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	// start-fg keeps the master process in the foreground, our child.
	p.proc, err = startProc("postfix", exec.Command(bin, "-c", conf, "start-fg"), filepath.Join(dir, "postfix.stderr"))
	if err != nil {
		return nil, err
	}
	p.stopCmd = []string{bin, "-c", conf, "stop"}
	if err := p.waitGreeting(ctx, p.smtpAddr, "220"); err != nil {
		p.stop()
		b, _ := os.ReadFile(filepath.Join(dir, "postfix.log"))
		return nil, fmt.Errorf("%w\n%s", err, lastLines(string(b), 15))
	}
	return p, nil
}
