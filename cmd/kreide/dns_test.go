package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"

	"kreide/config"
	"kreide/internal/admin"
)

// zone is a DNS zone for tests: answers by lower-case name without the final dot.
type zone struct {
	mx    map[string][]*net.MX
	txt   map[string][]string
	srv   map[string][]*net.SRV
	cname map[string]string
	addrs map[string][]net.IP
	ptr   map[string][]string
}

func newZone() *zone {
	return &zone{mx: map[string][]*net.MX{}, txt: map[string][]string{}, srv: map[string][]*net.SRV{},
		cname: map[string]string{}, addrs: map[string][]net.IP{}, ptr: map[string][]string{}}
}

// publish adds what `kreide dns records` asks for, as a careful admin would,
// and an address and reverse record for hostname.
func (z *zone) publish(hostname string, recs []admin.DNSRecord) {
	ip := net.ParseIP("192.0.2.10")
	z.addrs[hostname] = []net.IP{ip}
	z.ptr[ip.String()] = []string{hostname + "."}
	for _, r := range recs {
		switch r.Type {
		case "MX":
			f := strings.Fields(r.Value)
			pref, _ := strconv.Atoi(f[0])
			z.mx[r.Name] = append(z.mx[r.Name], &net.MX{Host: f[1], Pref: uint16(pref)})
		case "TXT":
			z.txt[r.Name] = append(z.txt[r.Name], r.Value)
		case "SRV":
			f := strings.Fields(r.Value)
			n := make([]uint16, 3)
			for i := range n {
				v, _ := strconv.Atoi(f[i])
				n[i] = uint16(v)
			}
			z.srv[r.Name] = append(z.srv[r.Name], &net.SRV{Priority: n[0], Weight: n[1], Port: n[2], Target: f[3]})
		case "CNAME":
			z.cname[r.Name] = r.Value
		}
	}
}

func notFound(name string) error {
	return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// The zone is a resolver for checkDNS.
func (z *zone) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	if v := z.mx[canon(name)]; v != nil {
		return v, nil
	}
	return nil, notFound(name)
}

func (z *zone) LookupTXT(_ context.Context, name string) ([]string, error) {
	if v := z.txt[canon(name)]; v != nil {
		return v, nil
	}
	return nil, notFound(name)
}

func (z *zone) LookupSRV(_ context.Context, _, _, name string) (string, []*net.SRV, error) {
	if v := z.srv[canon(name)]; v != nil {
		return name, v, nil
	}
	return "", nil, notFound(name)
}

func (z *zone) LookupCNAME(_ context.Context, name string) (string, error) {
	if v, ok := z.cname[canon(name)]; ok {
		return v, nil
	}
	if z.addrs[canon(name)] != nil {
		return canon(name) + ".", nil
	}
	return "", notFound(name)
}

func (z *zone) LookupIPAddr(_ context.Context, name string) ([]net.IPAddr, error) {
	name = canon(name)
	if t, ok := z.cname[name]; ok {
		name = canon(t)
	}
	var out []net.IPAddr
	for _, ip := range z.addrs[name] {
		out = append(out, net.IPAddr{IP: ip})
	}
	if out == nil {
		return nil, notFound(name)
	}
	return out, nil
}

func (z *zone) LookupAddr(_ context.Context, addr string) ([]string, error) {
	if v := z.ptr[addr]; v != nil {
		return v, nil
	}
	return nil, notFound(addr)
}

// testRecords are the records of a fresh data dir for school.test.
func testRecords(t *testing.T, hostname string) []admin.DNSRecord {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Domains = []string{"school.test"}
	os.MkdirAll(cfg.DataDir, 0o700)
	resp, err := admin.Run(context.Background(), cfg, admin.Request{Op: admin.OpDNSRecords, Hostname: hostname})
	if err != nil || resp.Error != "" {
		t.Fatalf("dns.records: %v %s", err, resp.Error)
	}
	return resp.Records
}

func statuses(results []dnsResult) map[string]string {
	out := map[string]string{}
	for _, r := range results {
		out[r.rec.Name+" "+r.rec.Type+" "+r.rec.Value] = r.status
	}
	return out
}

func TestCheckDNS(t *testing.T) {
	ctx := context.Background()
	const host = "mail.school.test"
	recs := testRecords(t, host)
	find := func(prefix string) admin.DNSRecord {
		for _, r := range recs {
			if strings.HasPrefix(r.Name+" "+r.Type+" "+r.Value, prefix) {
				return r
			}
		}
		t.Fatalf("no record %q", prefix)
		return admin.DNSRecord{}
	}
	key := func(r admin.DNSRecord) string { return r.Name + " " + r.Type + " " + r.Value }

	// Everything published: all OK (the address and reverse record too).
	z := newZone()
	z.publish(host, recs)
	results := checkDNS(ctx, z, host, recs)
	if len(results) != len(recs)+2 {
		t.Fatalf("%d results for %d records", len(results), len(recs))
	}
	for _, r := range results {
		if r.status != dnsOK {
			t.Errorf("%s %s: %s %v %s", r.rec.Name, r.rec.Type, r.status, r.found, r.note)
		}
	}

	// Now the admin made mistakes.
	dkim := find("ed25519-")
	spf := find("school.test TXT v=spf1")
	dmarc := find("_dmarc.school.test TXT")
	imaps := find("_imaps._tcp.school.test SRV")
	autoconfig := find("autoconfig.school.test CNAME")
	autodiscover := find("autodiscover.school.test CNAME")
	mx := find("school.test MX")
	caldavPath := find("_caldavs._tcp.school.test TXT")

	z = newZone()
	z.publish(host, recs)
	z.mx["school.test"] = []*net.MX{{Host: "mx.oldprovider.example.", Pref: 10}}
	z.txt["school.test"] = []string{"google-site-verification=abc", "v=spf1 include:oldprovider.example -all"}
	delete(z.txt, "_dmarc.school.test")
	z.txt[dkim.Name] = []string{"v=DKIM1; k=ed25519; p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}
	z.srv["_imaps._tcp.school.test"] = []*net.SRV{{Port: 993, Target: "imap.oldprovider.example."}}
	delete(z.cname, "autoconfig.school.test")
	z.addrs["autoconfig.school.test"] = []net.IP{net.ParseIP("198.51.100.7")} // another server
	delete(z.cname, "autodiscover.school.test")
	z.addrs["autodiscover.school.test"] = []net.IP{net.ParseIP("192.0.2.10")} // this server: fine
	z.txt[caldavPath.Name] = []string{"path=/caldav/"}
	z.ptr["192.0.2.10"] = []string{"static-10.provider.example."}
	got := statuses(checkDNS(ctx, z, host, recs))
	for k, want := range map[string]string{
		key(mx):                        dnsWrong,
		key(spf):                       dnsWrong,
		key(dmarc):                     dnsMissing,
		key(dkim):                      dnsWrong,
		key(find("rsa-")):              dnsOK,
		key(imaps):                     dnsWrong,
		key(autoconfig):                dnsWrong,
		key(autodiscover):              dnsOK,
		key(caldavPath):                dnsWrong,
		"192.0.2.10 PTR ":              dnsWrong,
		host + " A/AAAA ":              dnsOK,
		key(find("_submissions._tcp")): dnsOK,
	} {
		if got[k] != want {
			t.Errorf("%s: %s, want %s", k, got[k], want)
		}
	}

	// Acceptable variants of SPF and DMARC; several SPF records are wrong.
	for _, tc := range []struct {
		txt  []string
		rec  admin.DNSRecord
		want string
	}{
		{[]string{"v=spf1 mx include:newsletter.example ~all"}, spf, dnsOK},
		{[]string{"v=spf1 +mx -all"}, spf, dnsOK},
		{[]string{"v=spf1 -mx a -all"}, spf, dnsWrong},
		{[]string{"v=spf1 mx -all", "v=spf1 a -all"}, spf, dnsWrong},
		{[]string{"v=DMARC1; p=none; rua=mailto:x@school.test"}, dmarc, dnsOK},
		{[]string{"v=DMARC1; p=reject"}, dmarc, dnsOK},
		{[]string{"v=DMARC1; rua=mailto:x@school.test"}, dmarc, dnsWrong},
	} {
		z := newZone()
		z.publish(host, recs)
		z.txt[tc.rec.Name] = tc.txt
		if got := statuses(checkDNS(ctx, z, host, []admin.DNSRecord{tc.rec}))[key(tc.rec)]; got != tc.want {
			t.Errorf("%v for %s: %s, want %s", tc.txt, tc.rec.Name, got, tc.want)
		}
	}

	// Nothing published, and a failing DNS server.
	got = statuses(checkDNS(ctx, newZone(), host, []admin.DNSRecord{mx}))
	if got[key(mx)] != dnsMissing || got[host+" A/AAAA "] != dnsMissing {
		t.Errorf("empty zone: %v", got)
	}
	res := checkDNS(ctx, failingResolver{}, host, []admin.DNSRecord{mx})
	if res[1].status != dnsError || !strings.Contains(res[1].note, "server misbehaving") {
		t.Errorf("failing DNS: %+v", res[1])
	}

	// What the administrator reads.
	var out strings.Builder
	bad := printDNSResults(&out, checkDNS(ctx, newZone(), host, []admin.DNSRecord{dmarc}))
	if bad != 2 || !strings.Contains(out.String(), "MISSING  _dmarc.school.test TXT") ||
		!strings.Contains(out.String(), "publish  _dmarc.school.test.\tIN\tTXT\t\"v=DMARC1;") {
		t.Errorf("%d bad, output:\n%s", bad, out.String())
	}
}

// failingResolver answers every question with SERVFAIL.
type failingResolver struct{}

func servfail(name string) error {
	return &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
}

func (failingResolver) LookupMX(_ context.Context, n string) ([]*net.MX, error) {
	return nil, servfail(n)
}
func (failingResolver) LookupTXT(_ context.Context, n string) ([]string, error) {
	return nil, servfail(n)
}
func (failingResolver) LookupSRV(_ context.Context, _, _, n string) (string, []*net.SRV, error) {
	return "", nil, servfail(n)
}
func (failingResolver) LookupCNAME(_ context.Context, n string) (string, error) {
	return "", servfail(n)
}
func (failingResolver) LookupIPAddr(_ context.Context, n string) ([]net.IPAddr, error) {
	return nil, servfail(n)
}
func (failingResolver) LookupAddr(_ context.Context, n string) ([]string, error) {
	return nil, servfail(n)
}

// dnsServer answers DNS questions over UDP on loopback from z.
type dnsServer struct {
	pc net.PacketConn
	mu sync.Mutex
	z  *zone
}

func startDNSServer(t *testing.T, z *zone) *dnsServer {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{pc: pc, z: z}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp, err := s.answer(buf[:n]); err == nil {
				pc.WriteTo(resp, addr)
			}
		}
	}()
	return s
}

func (s *dnsServer) set(z *zone) {
	s.mu.Lock()
	s.z = z
	s.mu.Unlock()
}

func (s *dnsServer) answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	z := s.z
	s.mu.Unlock()
	name := canon(q.Name.String())
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true})
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	rh := func(n string, typ dnsmessage.Type) dnsmessage.ResourceHeader {
		return dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(canon(n) + "."), Type: typ, Class: dnsmessage.ClassINET, TTL: 60}
	}
	found := false
	owner := name
	if target, ok := z.cname[name]; ok && q.Type != dnsmessage.TypeTXT && q.Type != dnsmessage.TypeSRV {
		found = true
		b.CNAMEResource(rh(name, dnsmessage.TypeCNAME), dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName(target)})
		owner = canon(target)
	}
	switch q.Type {
	case dnsmessage.TypeA, dnsmessage.TypeAAAA:
		if ips, ok := z.addrs[owner]; ok {
			found = true
			for _, ip := range ips {
				if ip4 := ip.To4(); ip4 != nil && q.Type == dnsmessage.TypeA {
					b.AResource(rh(owner, dnsmessage.TypeA), dnsmessage.AResource{A: [4]byte(ip4)})
				}
			}
		}
	case dnsmessage.TypeMX:
		for _, mx := range z.mx[name] {
			found = true
			b.MXResource(rh(name, dnsmessage.TypeMX), dnsmessage.MXResource{Pref: mx.Pref, MX: dnsmessage.MustNewName(mx.Host)})
		}
	case dnsmessage.TypeTXT:
		for _, txt := range z.txt[name] {
			found = true
			var parts []string
			for len(txt) > 255 {
				parts, txt = append(parts, txt[:255]), txt[255:]
			}
			b.TXTResource(rh(name, dnsmessage.TypeTXT), dnsmessage.TXTResource{TXT: append(parts, txt)})
		}
	case dnsmessage.TypeSRV:
		for _, srv := range z.srv[name] {
			found = true
			b.SRVResource(rh(name, dnsmessage.TypeSRV), dnsmessage.SRVResource{Priority: srv.Priority, Weight: srv.Weight, Port: srv.Port, Target: dnsmessage.MustNewName(srv.Target)})
		}
	case dnsmessage.TypePTR:
		ip := reverseIP(name)
		for _, n := range z.ptr[ip] {
			found = true
			b.PTRResource(rh(name, dnsmessage.TypePTR), dnsmessage.PTRResource{PTR: dnsmessage.MustNewName(n)})
		}
	}
	if !found && !z.exists(name) {
		// NXDOMAIN
		b2 := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: dnsmessage.RCodeNameError})
		b2.StartQuestions()
		b2.Question(q)
		return b2.Finish()
	}
	return b.Finish()
}

// exists reports whether the zone has any record at name (NODATA rather than NXDOMAIN).
func (z *zone) exists(name string) bool {
	_, a := z.mx[name]
	_, b := z.txt[name]
	_, c := z.srv[name]
	_, d := z.cname[name]
	_, e := z.addrs[name]
	return a || b || c || d || e
}

// reverseIP turns "10.2.0.192.in-addr.arpa" into "192.0.2.10".
func reverseIP(name string) string {
	f := strings.Split(strings.TrimSuffix(name, ".in-addr.arpa"), ".")
	for i, j := 0, len(f)-1; i < j; i, j = i+1, j-1 {
		f[i], f[j] = f[j], f[i]
	}
	return strings.Join(f, ".")
}

// kreide dns records and dns check, end to end: against a DNS server on
// loopback, without serve and through it.
func TestDNSCommands(t *testing.T) {
	cfg, dataDir := writeConfig(t, "")
	os.MkdirAll(dataDir, 0o700)
	zoneText := ok(t, "", "dns", "records", "-config", cfg).stdout
	for _, want := range []string{
		"; ---- school.test ----", "\n; mail for school.test goes to this server\nschool.test.\tIN\tMX\t10 localhost.\n",
		"\tIN\tTXT\t\"v=spf1 mx -all\"", "._domainkey.school.test.\tIN\tTXT\t\"v=DKIM1; k=ed25519; p=", "k=rsa",
		"_dmarc.school.test.\tIN\tTXT", "_imaps._tcp.school.test.\tIN\tSRV\t0 1 993 localhost.", "autoconfig.school.test.\tIN\tCNAME\tlocalhost.",
	} {
		if !strings.Contains(zoneText, want) {
			t.Errorf("dns records lacks %q:\n%s", want, zoneText)
		}
	}
	// Every record line has a comment above it.
	lines := strings.Split(zoneText, "\n")
	for i, l := range lines {
		if strings.Contains(l, "\tIN\t") && !strings.HasPrefix(lines[i-1], "; ") {
			t.Errorf("record line %q has no comment", l)
		}
	}

	// The same records through serve: the DKIM keys stay the same.
	s := startServe(t, cfg)
	if through := ok(t, "", "dns", "records", "-config", cfg).stdout; through != zoneText {
		t.Errorf("dns records through serve differ:\n%s\nvs\n%s", through, zoneText)
	}

	resp, err := admin.Run(context.Background(), mustLoad(t, cfg), admin.Request{Op: admin.OpDNSRecords, Hostname: "localhost"})
	if err != nil || resp.Error != "" {
		t.Fatal(err, resp.Error)
	}
	z := newZone()
	z.publish("localhost", resp.Records)
	srv := startDNSServer(t, z)
	resolver := srv.pc.LocalAddr().String()
	out := ok(t, "", "dns", "check", "-resolver", resolver, "-config", cfg).stdout
	if strings.Contains(out, "MISSING") || strings.Contains(out, "WRONG") || strings.Count(out, "\nOK ") < len(resp.Records) {
		t.Errorf("dns check of a complete zone:\n%s", out)
	}

	broken := newZone()
	broken.publish("localhost", resp.Records)
	delete(broken.txt, "_dmarc.school.test")
	broken.mx["school.test"] = []*net.MX{{Host: "mx.elsewhere.example.", Pref: 5}}
	srv.set(broken)
	r := fails(t, 1, "1 missing, 1 wrong:", "", "dns", "check", "-resolver", resolver, "-config", cfg)
	for _, want := range []string{
		"MISSING  _dmarc.school.test TXT", "publish  _dmarc.school.test.\tIN\tTXT\t\"v=DMARC1; p=quarantine",
		"WRONG    school.test MX", "found:   5 mx.elsewhere.example.", "instead: school.test.\tIN\tMX\t10 localhost.",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dns check output lacks %q:\n%s", want, r.stdout)
		}
	}
	s.stop(t, dataDir)
	fails(t, 2, `-resolver: "dns.example" is not an IP address`, "", "dns", "check", "-resolver", "dns.example", "-config", cfg)
}

func mustLoad(t *testing.T, path string) *config.Config {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
