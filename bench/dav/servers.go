package dav

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// errNotInstalled says a peer's program is missing; the suite then reports
// kreide alone.
var errNotInstalled = errors.New("not installed")

// selfSigned writes a self-signed ECDSA P-256 certificate for 127.0.0.1 and
// localhost (what kreide makes for itself) to dir/cert.pem and dir/key.pem.
func selfSigned(dir string) (certPath, keyPath string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// kreideServer is `kreide serve` with a config in a temporary directory.
type kreideServer struct {
	bin, dir, cfgPath, logPath string
	ports                      map[string]int // imap, imaps, smtp, submission, submissions, https
	p                          *proc
}

var kreideListeners = []string{"imap", "imaps", "smtp", "submission", "submissions", "https"}

// newKreide builds kreide and writes a config: every listener on a loopback
// high port, a self-signed certificate (kreide makes it), data in dir/data.
func newKreide(ctx context.Context, dir string) (*kreideServer, error) {
	bin, err := buildKreide(ctx, dir)
	if err != nil {
		return nil, err
	}
	ps, err := freePorts(len(kreideListeners))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	k := &kreideServer{bin: bin, dir: dir, cfgPath: filepath.Join(dir, "kreide.toml"), logPath: filepath.Join(dir, "kreide.log"), ports: map[string]int{}}
	var b strings.Builder
	fmt.Fprintf(&b, "hostname = \"localhost\"\ndomains = [\"example.org\"]\ndata_dir = %q\ndemo_account = \"\"\n\n[listen]\n", filepath.Join(dir, "data"))
	for i, l := range kreideListeners {
		k.ports[l] = ps[i]
		fmt.Fprintf(&b, "%s = \"127.0.0.1:%d\"\n", l, ps[i])
	}
	// A school behind one NAT address: the benchmark's thousands of
	// connections all come from 127.0.0.1.
	b.WriteString("\n[tls]\nself_signed = true\n\n[limits]\ndefault_quota = \"100 GiB\"\nmax_upload_size = \"4 GiB\"\nmax_conns_per_ip = 20000\n")
	if err := os.WriteFile(k.cfgPath, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *kreideServer) addr(l string) string { return fmt.Sprintf("127.0.0.1:%d", k.ports[l]) }
func (k *kreideServer) base() string         { return "https://" + k.addr("https") }

// addUser runs `kreide user add` with the password on standard input.
func (k *kreideServer) addUser(ctx context.Context, login, password string) error {
	cmd := exec.CommandContext(ctx, k.bin, "user", "add", login, "-config", k.cfgPath)
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("kreide user add %s: %v\n%s", login, err, out)
	}
	return nil
}

// start runs `kreide serve` and returns how long it took until every
// listener accepted a connection.
func (k *kreideServer) start(ctx context.Context) (time.Duration, error) {
	t0 := time.Now()
	p, err := startProc("kreide", k.logPath, nil, k.bin, "serve", "-config", k.cfgPath)
	if err != nil {
		return 0, err
	}
	k.p = p
	var addrs []string
	for _, l := range kreideListeners {
		addrs = append(addrs, k.addr(l))
	}
	if err := waitAccept(ctx, p, k.logPath, 60*time.Second, addrs...); err != nil {
		p.stop()
		return 0, err
	}
	return time.Since(t0), nil
}

func (k *kreideServer) stop() {
	if k != nil && k.p != nil {
		k.p.stop()
		k.p = nil
	}
}

// radicaleServer is Radicale 3 with htpasswd (plain) authentication,
// owner-only rights and the filesystem storage, over TLS.
type radicaleServer struct {
	dir, logPath string
	port         int
	p            *proc
}

func startRadicale(ctx context.Context, dir string, users map[string]string) (*radicaleServer, error) {
	bin, err := exec.LookPath("radicale")
	if err != nil {
		return nil, fmt.Errorf("radicale %w", errNotInstalled)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cert, key, err := selfSigned(dir)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	var pw strings.Builder
	for u, p := range users {
		fmt.Fprintf(&pw, "%s:%s\n", u, p)
	}
	htpasswd := filepath.Join(dir, "users")
	if err := os.WriteFile(htpasswd, []byte(pw.String()), 0o600); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`[server]
hosts = 127.0.0.1:%d
max_connections = 64
ssl = True
certificate = %s
key = %s

[auth]
type = htpasswd
htpasswd_filename = %s
htpasswd_encryption = plain

[rights]
type = owner_only

[storage]
filesystem_folder = %s

[web]
type = none

[logging]
level = warning
mask_passwords = True
`, port, cert, key, htpasswd, filepath.Join(dir, "collections"))
	confPath := filepath.Join(dir, "radicale.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	r := &radicaleServer{dir: dir, logPath: filepath.Join(dir, "radicale.log"), port: port}
	p, err := startProc("radicale", r.logPath, nil, bin, "--config", confPath)
	if err != nil {
		return nil, err
	}
	r.p = p
	if err := waitAccept(ctx, p, r.logPath, 30*time.Second, fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
		p.stop()
		return nil, err
	}
	return r, nil
}

func (r *radicaleServer) base() string { return fmt.Sprintf("https://127.0.0.1:%d", r.port) }

func (r *radicaleServer) stop() {
	if r != nil && r.p != nil {
		r.p.stop()
		r.p = nil
	}
}

// apacheServer is Apache httpd (event MPM) with mod_dav, mod_dav_fs and
// Basic authentication from a password file, over TLS (mod_ssl). /files/ is
// the DAV folder.
type apacheServer struct {
	dir, logPath string
	port         int
	p            *proc
}

func apacheBinary() (string, error) {
	if p, err := exec.LookPath("apache2"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/apache2", "/usr/sbin/httpd"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("apache2 %w", errNotInstalled)
}

const apacheModules = "/usr/lib/apache2/modules"

func startApache(ctx context.Context, dir string, users map[string]string) (*apacheServer, error) {
	bin, err := apacheBinary()
	if err != nil {
		return nil, err
	}
	for _, m := range []string{"mod_dav.so", "mod_dav_fs.so", "mod_ssl.so", "mod_mpm_event.so"} {
		if _, err := os.Stat(filepath.Join(apacheModules, m)); err != nil {
			return nil, fmt.Errorf("apache2 module %s %w", m, errNotInstalled)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cert, key, err := selfSigned(dir)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	davRoot, lockDir, runDir := filepath.Join(dir, "files"), filepath.Join(dir, "lock"), filepath.Join(dir, "run")
	for _, d := range []string{davRoot, lockDir, runDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	// Apache's passwords: {SHA} is the cheapest scheme it takes on Linux
	// (plain text is refused), so authentication costs it next to nothing.
	var pw strings.Builder
	for u, p := range users {
		sum := sha1.Sum([]byte(p))
		fmt.Fprintf(&pw, "%s:{SHA}%s\n", u, base64.StdEncoding.EncodeToString(sum[:]))
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(pw.String()), 0o644); err != nil {
		return nil, err
	}
	// As root, Apache serves as www-data, which must own what it writes.
	userLine := ""
	if os.Geteuid() == 0 {
		u, err := user.Lookup("www-data")
		if err != nil {
			return nil, fmt.Errorf("apache2: user www-data: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, d := range []string{davRoot, lockDir} {
			if err := os.Chown(d, uid, gid); err != nil {
				return nil, err
			}
		}
		userLine = "User www-data\nGroup www-data\n"
	}
	conf := fmt.Sprintf(`ServerRoot %[1]q
ServerName localhost
Listen 127.0.0.1:%[2]d
PidFile %[3]q
DefaultRuntimeDir %[4]q
ErrorLog %[5]q
LogLevel warn
%[6]s
LoadModule mpm_event_module %[7]s/mod_mpm_event.so
LoadModule authn_core_module %[7]s/mod_authn_core.so
LoadModule authn_file_module %[7]s/mod_authn_file.so
LoadModule auth_basic_module %[7]s/mod_auth_basic.so
LoadModule authz_core_module %[7]s/mod_authz_core.so
LoadModule authz_user_module %[7]s/mod_authz_user.so
LoadModule alias_module %[7]s/mod_alias.so
LoadModule dav_module %[7]s/mod_dav.so
LoadModule dav_fs_module %[7]s/mod_dav_fs.so
LoadModule socache_shmcb_module %[7]s/mod_socache_shmcb.so
LoadModule ssl_module %[7]s/mod_ssl.so

KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 30
Timeout 300
LimitRequestBody 0
EnableSendfile Off

SSLEngine on
SSLCertificateFile %[8]q
SSLCertificateKeyFile %[9]q
SSLProtocol -all +TLSv1.2 +TLSv1.3
SSLSessionCache shmcb:%[4]s/ssl_scache(512000)

DavLockDB %[10]q
Alias /files %[11]q
<Directory %[11]q>
	Dav On
	AuthType Basic
	AuthName "dav"
	AuthBasicProvider file
	AuthUserFile %[12]q
	Require valid-user
	Options None
	AllowOverride None
</Directory>
`, dir, port, filepath.Join(runDir, "httpd.pid"), runDir, filepath.Join(dir, "error.log"), userLine,
		apacheModules, cert, key, filepath.Join(lockDir, "davlock"), davRoot, htpasswd)
	confPath := filepath.Join(dir, "httpd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	a := &apacheServer{dir: dir, logPath: filepath.Join(dir, "apache.log"), port: port}
	p, err := startProc("apache2", a.logPath, nil, bin, "-f", confPath, "-DFOREGROUND")
	if err != nil {
		return nil, err
	}
	a.p = p
	if err := waitAccept(ctx, p, a.logPath, 30*time.Second, fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
		p.stop()
		return nil, fmt.Errorf("%v\n%s", err, tail(filepath.Join(dir, "error.log")))
	}
	return a, nil
}

func (a *apacheServer) base() string { return fmt.Sprintf("https://127.0.0.1:%d", a.port) }

func (a *apacheServer) stop() {
	if a != nil && a.p != nil {
		a.p.stop()
		a.p = nil
	}
}
