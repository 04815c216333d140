package mail

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// kreide checks SPF, DKIM and DMARC of every inbound message, so it asks DNS
// two or three questions per message. A mail server has a caching resolver
// on the machine for that; the resolver of this test machine instead drops
// queries under load (each costs a 5 s timeout), which would measure the
// machine rather than kreide. So kreide's SMTP run gets its own DNS: a stub
// on a loopback address that answers at once, as a warm cache would, and
// an /etc/resolv.conf naming it, bind-mounted in a private mount namespace
// of the kreide process only (unshare -m; needs root). The answers: the
// sender's domain has an SPF record that passes 127.0.0.0/8 and a DMARC
// record with p=none; every other name does not exist.

// dnsStub is a UDP DNS server with fixed TXT records.
type dnsStub struct {
	conn       net.PacketConn
	resolvConf string
	txt        map[string]string // lower-case name with final dot -> TXT
}

// startDNSStub listens on port 53 of a loopback address (resolv.conf has no
// port) and writes a resolv.conf naming it into dir.
func startDNSStub(dir string) (*dnsStub, error) {
	var conn net.PacketConn
	var err error
	for _, a := range []string{"127.0.0.153:53", "127.0.0.154:53", "127.0.0.155:53"} {
		if conn, err = net.ListenPacket("udp", a); err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	s := &dnsStub{conn: conn, resolvConf: filepath.Join(dir, "resolv.conf"), txt: map[string]string{
		"sender.example.":        "v=spf1 ip4:127.0.0.0/8 -all",
		"_dmarc.sender.example.": "v=DMARC1; p=none",
	}}
	host, _, _ := net.SplitHostPort(conn.LocalAddr().String())
	if err := os.WriteFile(s.resolvConf, []byte("nameserver "+host+"\noptions ndots:1\n"), 0o644); err != nil {
		conn.Close()
		return nil, err
	}
	go s.serve()
	return s, nil
}

func (s *dnsStub) close() { s.conn.Close() }

func (s *dnsStub) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp, err := s.answer(buf[:n]); err == nil {
			s.conn.WriteTo(resp, from)
		}
	}
}

func (s *dnsStub) answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	txt, known := s.txt[strings.ToLower(q.Name.String())]
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if known && q.Type == dnsmessage.TypeTXT {
		if err := b.StartAnswers(); err != nil {
			return nil, err
		}
		if err := b.TXTResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 300}, dnsmessage.TXTResource{TXT: []string{txt}}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// withResolvConf wraps cmd so that it runs in a private mount namespace
// where /etc/resolv.conf is the stub's. It needs root and unshare(1).
func withResolvConf(cmd *exec.Cmd, resolvConf string) (*exec.Cmd, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("a private resolv.conf needs root")
	}
	unshare, ok := findProgram("unshare")
	if !ok {
		return nil, errors.New("unshare(1) is missing")
	}
	args := append([]string{"-m", "--propagation", "private", "sh", "-c", `mount --bind "$0" /etc/resolv.conf && exec "$@"`, resolvConf}, cmd.Args...)
	w := exec.Command(unshare, args...)
	w.Dir, w.Env = cmd.Dir, cmd.Env
	return w, nil
}

// checkPrivateResolvConf makes sure the wrapper works here before kreide
// depends on it.
func checkPrivateResolvConf(resolvConf string) error {
	cmd, err := withResolvConf(exec.Command("cat", "/etc/resolv.conf"), resolvConf)
	if err != nil {
		return err
	}
	out, err := cmd.CombinedOutput()
	want, _ := os.ReadFile(resolvConf)
	if err != nil || string(out) != string(want) {
		return fmt.Errorf("private resolv.conf: %v %s", err, out)
	}
	return nil
}
