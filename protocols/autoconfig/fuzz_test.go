package autoconfig

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func fuzzHandler() *http.ServeMux {
	h := New(Options{Hostname: "mail.example.org", Domains: []string{"example.org"}, IMAPS: 993, IMAP: 143,
		Submissions: 465, Submission: 587, HTTPS: 443, Logger: nil})
	mux := http.NewServeMux()
	h.Register(mux, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusUnauthorized) })
	})
	return mux
}

// wellFormed reports whether b is one well-formed XML document.
func wellFormed(b []byte) bool {
	dec := xml.NewDecoder(strings.NewReader(string(b)))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
}

// FuzzAutodiscover: any Outlook Autodiscover request body gets 200 with a
// well-formed answer for one of our addresses, or 400/404; the address
// never breaks out of its XML element.
func FuzzAutodiscover(f *testing.F) {
	for _, s := range []string{
		`<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>lehrerin@example.org</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`,
		`<Autodiscover><Request><EMailAddress>a&lt;/LoginName&gt;&lt;x&gt;@example.org</EMailAddress></Request></Autodiscover>`,
		`<!DOCTYPE x [<!ENTITY a "aaaa">]><Autodiscover><Request><EMailAddress>&a;@example.org</EMailAddress></Request></Autodiscover>`,
		`<Autodiscover><Request><EMailAddress>x@other.example</EMailAddress></Request></Autodiscover>`,
		"",
	} {
		f.Add(s)
	}
	mux := fuzzHandler()
	f.Fuzz(func(t *testing.T, body string) {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("POST", "/autodiscover/autodiscover.xml", strings.NewReader(body)))
		switch w.Code {
		case 200:
			if !wellFormed(w.Body.Bytes()) {
				t.Fatalf("answer to %q is not well-formed XML:\n%s", body, w.Body.String())
			}
		case 400, 404:
		default:
			t.Fatalf("status %d for %q", w.Code, body)
		}
	})
}

// FuzzThunderbirdAutoconfig: any emailaddress query gets a well-formed
// answer or 404.
func FuzzThunderbirdAutoconfig(f *testing.F) {
	for _, s := range []string{"lehrerin@example.org", "", "x@other.example", "<a>@example.org", "@example.org", "a@EXAMPLE.ORG"} {
		f.Add(s)
	}
	mux := fuzzHandler()
	f.Fuzz(func(t *testing.T, email string) {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress="+url.QueryEscape(email), nil))
		switch w.Code {
		case 200:
			if !wellFormed(w.Body.Bytes()) {
				t.Fatalf("answer for %q is not well-formed XML:\n%s", email, w.Body.String())
			}
		case 404:
		default:
			t.Fatalf("status %d for %q", w.Code, email)
		}
	})
}
