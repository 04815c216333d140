package protocols

import (
	"bufio"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"kreide/store/storetest"
)

// readLineRaw reads one line byte by byte, so that nothing after it is
// buffered (the TLS handshake must start on the raw connection).
func readLineRaw(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b []byte
	one := make([]byte, 1)
	for {
		if _, err := c.Read(one); err != nil {
			t.Fatalf("reading: %v (got %q)", err, b)
		}
		b = append(b, one[0])
		if one[0] == '\n' {
			return strings.TrimRight(string(b), "\r\n")
		}
	}
}

// readSMTPReplyRaw reads one (multi-line) SMTP reply byte by byte.
func readSMTPReplyRaw(t *testing.T, c net.Conn) string {
	t.Helper()
	var all []string
	for {
		l := readLineRaw(t, c)
		all = append(all, l)
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(all, "\n")
		}
	}
}

// TestSTARTTLSInjection: commands pipelined after STARTTLS, in the same
// packet, were sent in clear text before the handshake; a man in the middle
// could have put them there. They must not be executed inside the TLS
// session (CVE-2011-0411 and its many relatives).
func TestSTARTTLSInjection(t *testing.T) {
	dir := storetest.Open(t)
	ls := startLive(t, dir)
	tlsConf := &tls.Config{InsecureSkipVerify: true}

	t.Run("IMAP", func(t *testing.T) {
		c, err := net.Dial("tcp", ls.addr("listen.imap"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		readLineRaw(t, c) // greeting
		if _, err := c.Write([]byte("a STARTTLS\r\nb CAPABILITY\r\n")); err != nil {
			t.Fatal(err)
		}
		if l := readLineRaw(t, c); !strings.HasPrefix(l, "a OK") {
			t.Fatalf("STARTTLS: %q", l)
		}
		tc := tls.Client(c, tlsConf)
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			// go-imap hands the buffered clear text to the TLS layer, which
			// refuses it: the injected command dies with the connection.
			t.Logf("handshake refused after injected clear text: %v", err)
			return
		}
		if _, err := tc.Write([]byte("c NOOP\r\n")); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(tc)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Logf("connection closed after the handshake: %v", err)
				return
			}
			if strings.HasPrefix(l, "b ") || strings.HasPrefix(l, "* CAPABILITY") {
				t.Fatalf("command injected before the handshake was answered inside TLS: %q", l)
			}
			if strings.HasPrefix(l, "c ") {
				return
			}
		}
	})

	for _, key := range []string{"listen.submission", "listen.smtp"} {
		t.Run("SMTP "+key, func(t *testing.T) {
			c, err := net.Dial("tcp", ls.addr(key))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			readSMTPReplyRaw(t, c) // greeting
			c.Write([]byte("EHLO client.example.net\r\n"))
			readSMTPReplyRaw(t, c)
			if _, err := c.Write([]byte("STARTTLS\r\nRSET\r\n")); err != nil {
				t.Fatal(err)
			}
			if r := readSMTPReplyRaw(t, c); !strings.HasPrefix(r, "220") {
				t.Fatalf("STARTTLS: %q", r)
			}
			tc := tls.Client(c, tlsConf)
			tc.SetDeadline(time.Now().Add(10 * time.Second))
			if err := tc.Handshake(); err != nil {
				t.Logf("handshake refused after injected clear text: %v", err)
				return
			}
			// Pipelined: the first reply must be EHLO's (multi-line), the
			// second NOOP's, and nothing else may follow.
			if _, err := tc.Write([]byte("EHLO client.example.net\r\nNOOP\r\n")); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(tc)
			reply := func() string {
				var all []string
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return strings.Join(append(all, "error: "+err.Error()), "\n")
					}
					all = append(all, strings.TrimRight(l, "\r\n"))
					if len(l) < 4 || l[3] != '-' {
						return strings.Join(all, "\n")
					}
				}
			}
			if first := reply(); !strings.HasPrefix(first, "250-") {
				t.Fatalf("first reply inside TLS is not EHLO's: %q (the injected RSET was answered)", first)
			}
			if second := reply(); !strings.HasPrefix(second, "250") {
				t.Fatalf("NOOP: %q", second)
			}
			tc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if extra, err := r.ReadString('\n'); err == nil {
				t.Fatalf("an extra reply inside TLS: %q", extra)
			}
		})
	}
}

// TestTLSVersions: every TLS listener and every STARTTLS port refuses TLS
// 1.0 and 1.1 and accepts 1.2 and 1.3.
func TestTLSVersions(t *testing.T) {
	dir := storetest.Open(t)
	ls := startLive(t, dir)
	ports := []struct {
		key      string
		starttls string // "" for implicit TLS
	}{
		{"listen.imaps", ""},
		{"listen.submissions", ""},
		{"listen.https", ""},
		{"listen.imap", "imap"},
		{"listen.submission", "smtp"},
		{"listen.smtp", "smtp"},
	}
	versions := []struct {
		v    uint16
		name string
		ok   bool
	}{
		{tls.VersionTLS10, "TLS 1.0", false},
		{tls.VersionTLS11, "TLS 1.1", false},
		{tls.VersionTLS12, "TLS 1.2", true},
		{tls.VersionTLS13, "TLS 1.3", true},
	}
	for _, p := range ports {
		for _, v := range versions {
			t.Run(p.key+" "+v.name, func(t *testing.T) {
				c, err := net.Dial("tcp", ls.addr(p.key))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				switch p.starttls {
				case "imap":
					readLineRaw(t, c)
					c.Write([]byte("a STARTTLS\r\n"))
					if l := readLineRaw(t, c); !strings.HasPrefix(l, "a OK") {
						t.Fatalf("STARTTLS: %q", l)
					}
				case "smtp":
					readSMTPReplyRaw(t, c)
					c.Write([]byte("EHLO client.example.net\r\n"))
					readSMTPReplyRaw(t, c)
					c.Write([]byte("STARTTLS\r\n"))
					if r := readSMTPReplyRaw(t, c); !strings.HasPrefix(r, "220") {
						t.Fatalf("STARTTLS: %q", r)
					}
				}
				tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, MinVersion: v.v, MaxVersion: v.v})
				tc.SetDeadline(time.Now().Add(10 * time.Second))
				err = tc.Handshake()
				if v.ok && err != nil {
					t.Fatalf("%s refused: %v", v.name, err)
				}
				if !v.ok && err != nil {
					t.Logf("%s refused: %v", v.name, err)
				}
				if !v.ok && err == nil {
					t.Fatalf("%s accepted (negotiated %x)", v.name, tc.ConnectionState().Version)
				}
			})
		}
	}
}
