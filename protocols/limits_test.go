package protocols

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"kreide/store/storetest"
)

// TestInputLimits: over-long or over-deep input on every protocol gets a
// clear refusal (or the connection is closed), the server keeps serving,
// and the user's data is unchanged (invariant 5).
func TestInputLimits(t *testing.T) {
	dir := storetest.Open(t)
	newUser(t, dir, anna, annaPass)
	ls := startLive(t, dir)

	t.Run("IMAP", func(t *testing.T) {
		for _, tt := range []struct {
			name, send string
			want       string // prefix of the tagged answer; "" means the server hangs up
		}{
			// go-imap answers "NO [SERVERBUG]" to a command over its 50 KiB
			// limit and to nesting over its depth limit (its decoder errors
			// are not protocol errors); either way nothing is kept.
			{"command line over 50 KiB", "a SELECT " + strings.Repeat("x", 100<<10) + "\r\n", ""},
			{"LITERAL+ over 4 KiB outside APPEND", "a SELECT {100000+}\r\n" + strings.Repeat("x", 100000) + "\r\n", ""},
			{"APPEND over APPENDLIMIT", fmt.Sprintf("a APPEND INBOX {%d}\r\n", 60<<20), "a NO [TOOBIG]"},
			{"unknown command", "a FROBNICATE\r\n", "a BAD"},
			{"nesting 40000 deep", "a SEARCH " + strings.Repeat("(", 40000) + "\r\n", ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				lc := ls.imapLogin(t, anna, annaPass)
				lc.send(tt.send)
				lc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
				var got string
				for {
					l, err := lc.r.ReadString('\n')
					if err != nil {
						if tt.want != "" {
							t.Fatalf("connection closed (%v), want %q", err, tt.want)
						}
						break
					}
					if strings.HasPrefix(l, "a ") {
						got = l
						break
					}
				}
				t.Logf("answer: %q", strings.TrimSpace(got))
				if tt.want == "" && got != "" && !strings.HasPrefix(got, "a BAD") && !strings.HasPrefix(got, "a NO") {
					t.Fatalf("got %q, want BAD, NO or a closed connection", got)
				}
				if tt.want != "" && !strings.HasPrefix(got, tt.want) {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
			})
		}
	})

	t.Run("SMTP", func(t *testing.T) {
		auth := base64.StdEncoding.EncodeToString([]byte("\x00" + anna + "\x00" + annaPass))
		for _, tt := range []struct {
			name string
			cmds []string
			want string
		}{
			{"line over 2000 bytes", []string{"EHLO " + strings.Repeat("h", 5000)}, "500"},
			{"SIZE over the limit", []string{"EHLO x", "MAIL FROM:<x@example.net> SIZE=60000000"}, "552"},
			{"message over the limit", []string{"EHLO x", "AUTH PLAIN " + auth, "MAIL FROM:<" + anna + ">", "RCPT TO:<" + anna + ">", "DATA", "BIG"}, "552"},
			{"too many recipients", append([]string{"EHLO x", "AUTH PLAIN " + auth, "MAIL FROM:<" + anna + ">"}, slicesRepeat("RCPT TO:<"+anna+">", 101)...), "452"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				port := "listen.smtp"
				if strings.Contains(strings.Join(tt.cmds, " "), "AUTH") {
					port = "listen.submission"
				}
				lc := dialLine(t, ls.addr(port))
				lc.smtpReply()
				var last string
				for _, c := range tt.cmds {
					if c == "BIG" {
						// 51 MiB of body: the server refuses at the end
						// without keeping it (the limit is 50 MiB).
						line := strings.Repeat("b", 998) + "\r\n"
						lc.send("From: " + anna + "\r\nSubject: big\r\n\r\n")
						for range (51 << 20) / len(line) {
							lc.send(line)
						}
						last = lc.smtp(".")
						continue
					}
					last = lc.smtp(c)
				}
				if !strings.HasPrefix(last, tt.want) {
					t.Fatalf("got %q, want %s", last, tt.want)
				}
			})
		}
	})

	t.Run("HTTP", func(t *testing.T) {
		deep := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:">` + strings.Repeat("<D:prop>", 10000) + strings.Repeat("</D:prop>", 10000) + `</D:propfind>`
		laughs := `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><D:propfind xmlns:D="DAV:"><D:prop><D:displayname>&c;</D:displayname></D:prop></D:propfind>`
		big := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop>` + strings.Repeat("<D:getetag/>", 200000) + `</D:prop></D:propfind>`
		c := ls.httpClient()
		for _, prefix := range []string{"/files/", "/dav/"} {
			for _, tt := range []struct {
				name, method, body string
				hdr                map[string]string
				want               []int
			}{
				{"XML nested 10000 deep", "PROPFIND", deep, nil, []int{400}},
				{"XML with entity declarations", "PROPFIND", laughs, nil, []int{400}},
				{"XML body over 1 MiB", "PROPFIND", big, nil, []int{400, 413}},
				{"header over 64 KiB", "PROPFIND", "", map[string]string{"X-Junk": strings.Repeat("j", 1<<20)}, []int{431}},
			} {
				t.Run(prefix+" "+tt.name, func(t *testing.T) {
					hdr := map[string]string{"Depth": "1"}
					for k, v := range tt.hdr {
						hdr[k] = v
					}
					code, body := ls.do(c, davReq{method: tt.method, path: prefix, user: anna, pass: annaPass, hdr: hdr, body: tt.body})
					ok := false
					for _, w := range tt.want {
						ok = ok || code == w
					}
					if !ok {
						t.Fatalf("got %d %s, want %v", code, truncate(body), tt.want)
					}
				})
			}
		}
		// A deeply nested MIME message is stored and served (the parser caps
		// nesting at store/message.MaxDepth) without harm.
		var nested strings.Builder
		nested.WriteString("From: anna@example.org\r\nSubject: nested\r\n")
		for i := range 1000 {
			fmt.Fprintf(&nested, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
		}
		nested.WriteString("Content-Type: text/plain\r\n\r\nleaf\r\n")
		lc := ls.imapLogin(t, anna, annaPass)
		if _, st := lc.imap("APPEND INBOX " + imapLiteral(nested.String())); !strings.HasPrefix(st, "OK") {
			t.Fatalf("APPEND of a 1000-deep MIME message: %s", st)
		}
		lc.imap("SELECT INBOX")
		if all, st := lc.imap("UID FETCH 1:* (BODYSTRUCTURE BODY.PEEK[1.1.1.1.1])"); !strings.HasPrefix(st, "OK") {
			t.Fatalf("FETCH of a 1000-deep MIME message: %s\n%s", st, truncate(all))
		}
	})

	// Still serving normally.
	floodUserSession(t, ls)
}

func slicesRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func truncate(s string) string {
	if len(s) > 300 {
		return s[:300] + "... (" + strconv.Itoa(len(s)) + " bytes)"
	}
	return s
}
