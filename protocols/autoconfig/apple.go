package autoconfig

import (
	"bytes"
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
	"time"

	"kreide/protocols/dav/davauth"
	"kreide/store"
)

// appleProfile answers an authenticated GET with a configuration profile for
// iOS and macOS: mail (IMAP + SMTP), CalDAV and CardDAV, all with a new app
// password made for this device, so the account password never sits on the
// phone and the device can be revoked alone (`kreide apppass revoke`).
func (h *Handler) appleProfile(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a := davauth.Account(r.Context())
	if a == nil {
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	device := strings.TrimSpace(r.URL.Query().Get("device"))
	if device == "" || len(device) > 60 {
		device = "Apple device"
	}
	label := fmt.Sprintf("%s %s", device, time.Now().UTC().Format("2006-01-02 15:04:05"))
	token, err := a.AddAppPassword(r.Context(), label, []store.Scope{store.ScopeIMAP, store.ScopeSMTP, store.ScopeDAV})
	if err != nil {
		h.o.Logger.Warn("mobileconfig: app password", "err", err)
		http.Error(w, "could not create an app password", http.StatusInternalServerError)
		return
	}
	body := h.mobileconfig(a.Login(), token, label)
	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Header().Set("Content-Disposition", `attachment; filename="kreide.mobileconfig"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(body)
}

// plist is a property list value: string, int, bool, []any or dict.
type dict []kv

type kv struct {
	k string
	v any
}

func uuid() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func (h *Handler) mobileconfig(login, token, label string) []byte {
	o := h.o
	id := "org.kreide." + strings.ReplaceAll(o.Hostname, ".", "-")
	var payloads []any
	if o.IMAPS > 0 || o.IMAP > 0 {
		port, ssl := o.IMAPS, true
		if port == 0 {
			port = o.IMAP // STARTTLS: iOS upgrades when the server offers it
		}
		out, outSSL := o.Submissions, true
		if out == 0 {
			out = o.Submission
		}
		payloads = append(payloads, dict{
			{"PayloadType", "com.apple.mail.managed"}, {"PayloadVersion", 1},
			{"PayloadIdentifier", id + ".mail"}, {"PayloadUUID", uuid()},
			{"PayloadDisplayName", "Mail (" + login + ")"},
			{"EmailAccountDescription", login}, {"EmailAccountType", "EmailTypeIMAP"},
			{"EmailAddress", login},
			{"IncomingMailServerAuthentication", "EmailAuthPassword"},
			{"IncomingMailServerHostName", o.Hostname}, {"IncomingMailServerPortNumber", port},
			{"IncomingMailServerUseSSL", ssl}, {"IncomingMailServerUsername", login},
			{"IncomingPassword", token},
			{"OutgoingMailServerAuthentication", "EmailAuthPassword"},
			{"OutgoingMailServerHostName", o.Hostname}, {"OutgoingMailServerPortNumber", out},
			{"OutgoingMailServerUseSSL", outSSL}, {"OutgoingMailServerUsername", login},
			{"OutgoingPasswordSameAsIncomingPassword", true},
		})
	}
	if o.HTTPS > 0 {
		payloads = append(payloads, dict{
			{"PayloadType", "com.apple.caldav.account"}, {"PayloadVersion", 1},
			{"PayloadIdentifier", id + ".caldav"}, {"PayloadUUID", uuid()},
			{"PayloadDisplayName", "Calendars (" + login + ")"},
			{"CalDAVAccountDescription", login}, {"CalDAVHostName", o.Hostname},
			{"CalDAVPort", o.HTTPS}, {"CalDAVUseSSL", true},
			{"CalDAVUsername", login}, {"CalDAVPassword", token},
			{"CalDAVPrincipalURL", h.baseURL() + "/dav/principals/" + login + "/"},
		}, dict{
			{"PayloadType", "com.apple.carddav.account"}, {"PayloadVersion", 1},
			{"PayloadIdentifier", id + ".carddav"}, {"PayloadUUID", uuid()},
			{"PayloadDisplayName", "Contacts (" + login + ")"},
			{"CardDAVAccountDescription", login}, {"CardDAVHostName", o.Hostname},
			{"CardDAVPort", o.HTTPS}, {"CardDAVUseSSL", true},
			{"CardDAVUsername", login}, {"CardDAVPassword", token},
			{"CardDAVPrincipalURL", h.baseURL() + "/dav/principals/" + login + "/"},
		})
	}
	profile := dict{
		{"PayloadType", "Configuration"}, {"PayloadVersion", 1},
		{"PayloadIdentifier", id}, {"PayloadUUID", uuid()},
		{"PayloadDisplayName", o.DisplayName + ": " + login},
		{"PayloadDescription", "Mail, calendars and contacts for " + login + ". App password: " + label},
		{"PayloadRemovalDisallowed", false},
		{"PayloadContent", payloads},
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	b.WriteString(`<plist version="1.0">` + "\n")
	writePlist(&b, profile)
	b.WriteString("</plist>\n")
	return b.Bytes()
}

func writePlist(b *bytes.Buffer, v any) {
	switch v := v.(type) {
	case string:
		b.WriteString("<string>")
		xml.EscapeText(b, []byte(v))
		b.WriteString("</string>")
	case int:
		fmt.Fprintf(b, "<integer>%d</integer>", v)
	case bool:
		if v {
			b.WriteString("<true/>")
		} else {
			b.WriteString("<false/>")
		}
	case []any:
		b.WriteString("<array>")
		for _, e := range v {
			writePlist(b, e)
		}
		b.WriteString("</array>")
	case dict:
		b.WriteString("<dict>")
		for _, e := range v {
			b.WriteString("<key>")
			xml.EscapeText(b, []byte(e.k))
			b.WriteString("</key>")
			writePlist(b, e.v)
		}
		b.WriteString("</dict>")
	default: // only the types above are built in this file
		b.WriteString("<string></string>")
	}
	b.WriteByte('\n')
}
