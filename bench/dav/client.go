package dav

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// client is one benchmark user of a DAV server: HTTP/1.1 over TLS with
// keep-alive (as the servers allow), Basic authentication on every request,
// as DAV clients do.
type client struct {
	base, user, pass string
	hc               *http.Client
}

func newClient(base, user, pass string, conns int) *client {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
		WriteBufferSize:     256 << 10,
		ReadBufferSize:      256 << 10,
	}
	return &client{base: base, user: user, pass: pass, hc: &http.Client{Transport: tr}}
}

func (c *client) close() { c.hc.CloseIdleConnections() }

// do sends one request; body may be nil. The caller closes the response body.
func (c *client) do(ctx context.Context, method, path string, body io.Reader, size int64, hdr ...string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil && size >= 0 {
		req.ContentLength = size
	}
	req.SetBasicAuth(c.user, c.pass)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return c.hc.Do(req)
}

// call sends a request with a small body and returns the response body,
// failing unless the status is one of want.
func (c *client) call(ctx context.Context, method, path, body string, want []int, hdr ...string) ([]byte, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	resp, err := c.do(ctx, method, path, r, int64(len(body)), hdr...)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	for _, w := range want {
		if resp.StatusCode == w {
			return b, nil
		}
	}
	if len(b) > 300 {
		b = b[:300]
	}
	return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
}

// multistatus is what the benchmark needs of a 207 answer: the responses
// (href and whether it is a 404, as sync-collection reports deletions) and
// the sync token.
type multistatus struct {
	hrefs     []string
	notFound  int
	syncToken string
}

// parseMultistatus reads a DAV:multistatus without caring about prefixes.
func parseMultistatus(b []byte) (multistatus, error) {
	var ms multistatus
	d := xml.NewDecoder(bytes.NewReader(b))
	var stack []string
	var text strings.Builder
	inResponse := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return ms, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			stack = append(stack, t.Name.Local)
			text.Reset()
			if t.Name.Space == "DAV:" && t.Name.Local == "response" {
				inResponse = true
			}
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			name := t.Name.Local
			stack = stack[:len(stack)-1]
			switch {
			case t.Name.Space != "DAV:":
			case name == "response":
				inResponse = false
			case name == "href" && inResponse && len(stack) > 0 && stack[len(stack)-1] == "response":
				ms.hrefs = append(ms.hrefs, strings.TrimSpace(text.String()))
			case name == "status" && inResponse && len(stack) > 0 && stack[len(stack)-1] == "response":
				if strings.Contains(text.String(), " 404 ") {
					ms.notFound++
				}
			case name == "sync-token" && !inResponse:
				ms.syncToken = strings.TrimSpace(text.String())
			}
			text.Reset()
		}
	}
	return ms, nil
}
