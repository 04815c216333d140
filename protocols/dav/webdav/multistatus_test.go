package webdav

import (
	"encoding/xml"
	"strings"
	"testing"
)

// msProp is one property of a parsed multistatus response.
type msProp struct {
	Status string
	Value  string // inner XML
}

// parseMultistatus maps href -> "{ns}local" -> property.
func parseMultistatus(t testing.TB, body string) map[string]map[string]msProp {
	t.Helper()
	var ms struct {
		Responses []struct {
			Href      string `xml:"DAV: href"`
			Propstats []struct {
				Prop struct {
					Any []struct {
						XMLName xml.Name
						Inner   string `xml:",innerxml"`
					} `xml:",any"`
				} `xml:"DAV: prop"`
				Status string `xml:"DAV: status"`
			} `xml:"DAV: propstat"`
		} `xml:"DAV: response"`
	}
	if err := xml.Unmarshal([]byte(body), &ms); err != nil {
		t.Fatalf("multistatus: %v\n%s", err, body)
	}
	out := map[string]map[string]msProp{}
	for _, r := range ms.Responses {
		m := map[string]msProp{}
		for _, ps := range r.Propstats {
			for _, p := range ps.Prop.Any {
				m["{"+p.XMLName.Space+"}"+p.XMLName.Local] = msProp{Status: strings.Fields(ps.Status)[1], Value: p.Inner}
			}
		}
		out[r.Href] = m
	}
	return out
}
