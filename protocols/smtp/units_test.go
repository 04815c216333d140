package smtp

import (
	"bufio"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dmarc"

	"kreide/store"
	"kreide/store/storetest"
)

func TestOrgDomainAlignment(t *testing.T) {
	for _, tc := range []struct {
		a, b    string
		mode    dmarc.AlignmentMode
		aligned bool
	}{
		{"example.org", "example.org", dmarc.AlignmentStrict, true},
		{"mail.example.org", "example.org", dmarc.AlignmentStrict, false},
		{"mail.example.org", "example.org", dmarc.AlignmentRelaxed, true},
		{"news.schule.de", "schule.de", dmarc.AlignmentRelaxed, true},
		{"schule-a.de", "schule-b.de", dmarc.AlignmentRelaxed, false},
		{"a.example.co.uk", "b.example.co.uk", dmarc.AlignmentRelaxed, true},
		{"example.co.uk", "other.co.uk", dmarc.AlignmentRelaxed, false}, // co.uk is a public suffix
		{"Example.ORG", "example.org", dmarc.AlignmentStrict, true},
	} {
		if got := aligned(tc.a, tc.b, tc.mode); got != tc.aligned {
			t.Errorf("aligned(%s, %s, %s) = %v", tc.a, tc.b, tc.mode, got)
		}
	}
}

func TestStatusOf(t *testing.T) {
	for _, tc := range []struct {
		code int
		msg  string
		want string
	}{
		{550, "550 5.1.1 no such user", "5.1.1"},
		{550, "5.7.1 relaying denied", "5.7.1"},
		{550, "no such user", "5.0.0"},
		{451, "451 4.3.0 later", "4.3.0"},
		{451, "451 5.1.1 inconsistent", "4.0.0"},
		{452, "", "4.0.0"},
		{550, "550 5.1.1234 bad", "5.0.0"},
	} {
		if got := statusOf(tc.code, tc.msg); got != tc.want {
			t.Errorf("statusOf(%d, %q) = %s, want %s", tc.code, tc.msg, got, tc.want)
		}
	}
}

func TestFailureOf(t *testing.T) {
	for _, tc := range []struct {
		r      store.QueueRecipient
		status string
		want   string
	}{
		{store.QueueRecipient{Code: 550, LastError: "550 5.1.1 gone"}, "", "5.1.1"},
		{store.QueueRecipient{Code: 451, LastError: "451 4.3.0 later"}, "4.4.7", "4.4.7"},
		{store.QueueRecipient{Code: 550, LastError: "550 5.7.1 no"}, "4.4.7", "5.7.1"},
		{store.QueueRecipient{LastError: "5.1.2 domain x has no mail server"}, "", "5.1.2"},
		{store.QueueRecipient{LastError: "connect: refused"}, "4.4.7", "4.4.7"},
		{store.QueueRecipient{Code: 250, LastError: "250 ok"}, "", "5.0.0"},
	} {
		if got := failureOf(&tc.r, tc.status).Status; got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.r, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	qr := &queueRunner{s: &Server{o: Options{RetryBase: time.Minute, RetryMax: time.Hour}}}
	want := time.Minute
	for n := 1; n <= 12; n++ {
		if d := qr.backoff(n); d < want*9/10 || d > want*11/10 {
			t.Fatalf("backoff(%d) = %s, want about %s", n, d, want)
		}
		want = min(2*want, time.Hour)
	}
}

func TestFold(t *testing.T) {
	v := strings.Repeat("method=result property=value; ", 10)
	f := fold("Authentication-Results", v, ";")
	for _, line := range strings.Split(strings.TrimSuffix(f, "\r\n"), "\r\n") {
		if len(line) > 80 {
			t.Errorf("line of %d bytes: %q", len(line), line)
		}
	}
	if strings.ReplaceAll(strings.ReplaceAll(f, "\r\n\t", " "), "  ", " ") == "" {
		t.Fatal("empty")
	}
}

func TestReadHeader(t *testing.T) {
	in := "From: a@b.test\r\nSubject: one\r\n two\r\nX-Empty:\r\n\r\nbody\r\n"
	br := bufio.NewReader(strings.NewReader(in))
	h, err := readHeader(br)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.fields) != 3 || h.all("subject")[0].value() != "one two" || h.all("X-Empty")[0].value() != "" {
		t.Fatalf("%+v", h.fields)
	}
	if string(h.bytes()) != "From: a@b.test\r\nSubject: one\r\n two\r\nX-Empty:\r\n\r\n" {
		t.Fatalf("%q", h.bytes())
	}
	rest, _ := br.ReadString(0)
	if rest != "body\r\n" {
		t.Fatalf("body %q", rest)
	}
	froms, err := h.fromAddresses()
	if err != nil || len(froms) != 1 || froms[0] != "a@b.test" {
		t.Fatal(froms, err)
	}
	// Encoded display names in unknown charsets do not break parsing.
	list, err := parseAddressList("=?x-unknown?q?Sch=FCler?= <Kid@Schule.test>")
	if err != nil || list[0] != "kid@schule.test" {
		t.Fatal(list, err)
	}
}

func TestForgedAuthResults(t *testing.T) {
	ss := &session{s: &Server{o: Options{Hostname: "mail.example.org"}}}
	for raw, forged := range map[string]bool{
		"Authentication-Results: mail.example.org; dkim=pass\r\n":   true,
		"Authentication-Results: MAIL.example.org 1; dkim=pass\r\n": true,
		"Authentication-Results:mail.example.org;spf=pass\r\n":      true,
		"Authentication-Results: other.org; dkim=pass\r\n":          false,
		"X-Authentication-Results: mail.example.org; x\r\n":         false,
	} {
		name, _ := fieldName([]byte(raw))
		if got := ss.forgedAuthResults(field{name: name, raw: []byte(raw)}); got != forged {
			t.Errorf("%q: %v", raw, got)
		}
	}
}

func TestDNSRecordsListEverythingClientsLookUp(t *testing.T) {
	d := storetest.Open(t)
	recs, err := DNSRecords(t.Context(), d, "mail.example.org")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]string{}
	for _, r := range recs {
		have[r.Type+" "+r.Name] = r.Value
	}
	for key, want := range map[string]string{
		"MX example.org":                    "10 mail.example.org.",
		"SRV _submissions._tcp.example.org": "0 1 465 mail.example.org.",
		"SRV _submission._tcp.example.org":  "0 1 587 mail.example.org.",
		"SRV _imaps._tcp.example.org":       "0 1 993 mail.example.org.",
		"SRV _caldavs._tcp.example.org":     "0 1 443 mail.example.org.",
		"SRV _carddavs._tcp.example.org":    "0 1 443 mail.example.org.",
		"TXT _dmarc.example.org":            "v=DMARC1; p=quarantine; adkim=r; aspf=r",
	} {
		if have[key] != want {
			t.Errorf("%s = %q, want %q", key, have[key], want)
		}
	}
}
