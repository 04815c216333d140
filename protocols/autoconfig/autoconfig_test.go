package autoconfig

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"kreide/internal/interop"
	"kreide/protocols/dav/davauth"
	"kreide/store"
	"kreide/store/storetest"
)

func newServer(t *testing.T) (*httptest.Server, *store.Directory) {
	d := storetest.Open(t)
	if _, err := d.CreateAccount(context.Background(), "lehrerin@example.org", "password1"); err != nil {
		t.Fatal(err)
	}
	h := New(Options{Hostname: "mail.example.org", Domains: []string{"example.org"}, IMAPS: 993, IMAP: 143,
		Submissions: 465, Submission: 587, HTTPS: 443, Dir: d})
	mux := http.NewServeMux()
	h.Register(mux, davauth.Middleware(davauth.Options{Dir: d, AllowPlaintext: davauth.IsLoopback}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, d
}

func TestThunderbirdAutoconfig(t *testing.T) {
	srv, _ := newServer(t)
	for _, path := range []string{"/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml"} {
		resp, err := http.Get(srv.URL + path + "?emailaddress=lehrerin%40example.org")
		if err != nil {
			t.Fatal(err)
		}
		var c tbConfig
		err = xml.NewDecoder(resp.Body).Decode(&c)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, err)
		}
		in := c.Provider.Incoming
		if len(in) != 2 || in[0].Type != "imap" || in[0].Port != 993 || in[0].SocketType != "SSL" || in[0].Hostname != "mail.example.org" || in[0].Username != "%EMAILADDRESS%" {
			t.Fatalf("incoming %+v", in)
		}
		out := c.Provider.Outgoing
		if len(out) != 2 || out[0].Port != 465 || out[1].Port != 587 || out[1].SocketType != "STARTTLS" {
			t.Fatalf("outgoing %+v", out)
		}
		if c.Calendar == nil || c.Calendar.ServerURL != "https://mail.example.org/.well-known/caldav" {
			t.Fatalf("calendar %+v", c.Calendar)
		}
	}
	resp, _ := http.Get(srv.URL + "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=x%40other.org")
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("foreign domain: %d", resp.StatusCode)
	}
}

func TestOutlookAutodiscover(t *testing.T) {
	srv, _ := newServer(t)
	req := `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request><EMailAddress>lehrerin@example.org</EMailAddress>
  <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request>
</Autodiscover>`
	resp, err := http.Post(srv.URL+"/autodiscover/autodiscover.xml", "text/xml", strings.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got adResponse
	if err := xml.Unmarshal(body, &got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v\n%s", resp.StatusCode, err, body)
	}
	p := got.Response.Account.Protocol
	if len(p) != 2 || p[0].Type != "IMAP" || p[0].Port != 993 || p[0].LoginName != "lehrerin@example.org" || p[1].Type != "SMTP" || p[1].Port != 465 {
		t.Fatalf("protocols %+v", p)
	}
	for name, bad := range map[string]string{
		"garbage":  "<Autodiscover><Request>",
		"entities": `<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><Autodiscover><Request><EMailAddress>&b;</EMailAddress></Request></Autodiscover>`,
	} {
		resp, err := http.Post(srv.URL+"/Autodiscover/Autodiscover.xml", "text/xml", strings.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("%s: status %d, want 400", name, resp.StatusCode)
		}
	}
}

// plistStrings collects key -> string/integer values from a plist, flat.
func plistStrings(t *testing.T, body []byte) map[string][]string {
	out := map[string][]string{}
	dec := xml.NewDecoder(strings.NewReader(string(body)))
	dec.Strict = false
	var key, elem string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		switch v := tok.(type) {
		case xml.StartElement:
			elem = v.Name.Local
			if elem == "true" || elem == "false" {
				out[key] = append(out[key], elem)
			}
		case xml.CharData:
			switch elem {
			case "key":
				key = string(v)
			case "string", "integer":
				out[key] = append(out[key], string(v))
			}
			elem = ""
		}
	}
}

func TestAppleProfileCarriesWorkingAppPassword(t *testing.T) {
	srv, d := newServer(t)
	resp, _ := http.Get(srv.URL + "/profile.mobileconfig")
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("unauthenticated: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/profile.mobileconfig?device=iPhone", nil)
	req.SetBasicAuth("lehrerin@example.org", "password1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-apple-aspen-config" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	v := plistStrings(t, body)
	if v["IncomingMailServerHostName"][0] != "mail.example.org" || v["IncomingMailServerPortNumber"][0] != "993" || v["CalDAVPort"][0] != "443" {
		t.Fatalf("profile values %v", v)
	}
	token := v["IncomingPassword"][0]
	if token == "password1" || v["CalDAVPassword"][0] != token || v["CardDAVPassword"][0] != token {
		t.Fatal("profile must carry one fresh app password, not the account password")
	}
	ctx := context.Background()
	for _, scope := range []store.Scope{store.ScopeIMAP, store.ScopeSMTP, store.ScopeDAV} {
		a, err := d.Login(ctx, "lehrerin@example.org", token, scope)
		if err != nil {
			t.Fatalf("app password from the profile, scope %s: %v", scope, err)
		}
		a.Close()
	}
	list, _ := d.AppPasswords(ctx, "lehrerin@example.org")
	if len(list) != 1 || !strings.HasPrefix(list[0].Label, "iPhone ") {
		t.Fatalf("app passwords %+v", list)
	}
}

// TestCurlFetchesAutoconfig: the same request Thunderbird makes, from curl.
func TestCurlFetchesAutoconfig(t *testing.T) {
	curl := interop.Need(t, "curl", "curl")
	srv, _ := newServer(t)
	out, err := exec.Command(curl, "-sSf", srv.URL+"/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=lehrerin@example.org").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "<hostname>mail.example.org</hostname>") || !strings.Contains(string(out), "<port>993</port>") {
		t.Fatalf("curl got:\n%s", out)
	}
}
