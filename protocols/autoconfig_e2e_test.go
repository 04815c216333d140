package protocols

import (
	"encoding/xml"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// golden compares got with testdata/autoconfig/name, after replacing this
// run's ports with placeholders (PORT_IMAPS, ...).
func golden(t *testing.T, srv *Server, name string, got []byte) {
	t.Helper()
	s := string(got)
	for _, key := range []string{"imaps", "imap", "submissions", "submission", "https"} {
		port := strconv.Itoa(boundPort(srv, "listen."+key))
		s = regexp.MustCompile(`\b`+port+`\b`).ReplaceAllString(s, "PORT_"+strings.ToUpper(key))
	}
	path := filepath.Join("testdata", "autoconfig", name)
	if *update {
		os.WriteFile(path, []byte(s), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if s != string(want) {
		t.Errorf("%s differs from the golden file:\n%s", name, s)
	}
}

func fetch(t *testing.T, req *http.Request) (int, []byte) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: insecureTLS}}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestAutoconfigOverHTTPS: what Thunderbird, Outlook and an iPhone fetch
// from kreide serve, compared with golden files; the profile's app password
// then logs in over IMAP.
func TestAutoconfigOverHTTPS(t *testing.T) {
	srv, _ := wholeServer(t)
	base := "https://" + srv.Addr("listen.https").String()

	req, _ := http.NewRequest("GET", base+"/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=t%40example.org", nil)
	code, body := fetch(t, req)
	if code != 200 {
		t.Fatalf("Thunderbird autoconfig: %d", code)
	}
	golden(t, srv, "thunderbird.xml", body)

	req, _ = http.NewRequest("POST", base+"/autodiscover/autodiscover.xml", strings.NewReader(`<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request>
<EMailAddress>t@example.org</EMailAddress>
<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
</Request></Autodiscover>`))
	req.Header.Set("Content-Type", "text/xml")
	code, body = fetch(t, req)
	if code != 200 {
		t.Fatalf("Autodiscover: %d", code)
	}
	golden(t, srv, "autodiscover.xml", body)

	req, _ = http.NewRequest("GET", base+"/profile.mobileconfig?device=iPhone", nil)
	req.SetBasicAuth("t@example.org", "password1")
	code, body = fetch(t, req)
	if code != 200 {
		t.Fatalf("profile: %d %s", code, body)
	}
	dec := xml.NewDecoder(strings.NewReader(string(body)))
	dec.Strict = false // the plist DOCTYPE
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("profile is not a well-formed property list: %v", err)
		}
	}
	m := regexp.MustCompile(`<key>IncomingPassword</key>\s*<string>([^<]+)</string>`).FindStringSubmatch(string(body))
	if m == nil {
		t.Fatalf("no IncomingPassword in profile:\n%s", body)
	}
	if !regexp.MustCompile(`<key>IncomingMailServerPortNumber</key>\s*<integer>` + strconv.Itoa(boundPort(srv, "listen.imaps")) + `</integer>`).Match(body) {
		t.Errorf("profile does not name the IMAPS port:\n%s", body)
	}
	c, err := imapclient.DialTLS(srv.Addr("listen.imaps").String(), &imapclient.Options{TLSConfig: insecureTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("t@example.org", m[1]).Wait(); err != nil {
		t.Fatalf("the profile's app password does not log in over IMAP: %v", err)
	}
}

func boundPort(srv *Server, key string) int {
	_, p, _ := net.SplitHostPort(srv.Addr(key).String())
	n, _ := strconv.Atoi(p)
	return n
}
