// Package autoconfig answers the questions mail and calendar clients ask so
// that a teacher never types a server name or port: Thunderbird's autoconfig
// (config-v1.1.xml), Outlook's POX Autodiscover, and an Apple configuration
// profile (.mobileconfig) that sets up mail, CalDAV and CardDAV in one tap
// with a fresh app password for the device.
package autoconfig

import (
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"kreide/store"
)

// Options describe the server as clients must reach it. Ports are the public
// ones (0: the service is not offered).
type Options struct {
	Hostname string
	// Domains are the mail domains served; lookups for others get 404.
	Domains                 []string
	IMAPS, IMAP             int
	Submissions, Submission int
	HTTPS                   int
	Dir                     *store.Directory
	Logger                  *slog.Logger
	DisplayName, ShortName  string
}

// Handler serves the autoconfiguration endpoints. The .mobileconfig endpoint
// needs authentication: wrap it with the DAV auth middleware (see Routes).
type Handler struct {
	o Options
}

// New returns the handler set.
func New(o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.DisplayName == "" {
		o.DisplayName = "kreide (" + o.Hostname + ")"
	}
	if o.ShortName == "" {
		o.ShortName = "kreide"
	}
	return &Handler{o: o}
}

// Register mounts the public endpoints on mux, and the profile endpoint
// behind auth.
func (h *Handler) Register(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	mux.HandleFunc("/.well-known/autoconfig/mail/config-v1.1.xml", h.thunderbird)
	mux.HandleFunc("/mail/config-v1.1.xml", h.thunderbird) // on the autoconfig.<domain> host
	mux.HandleFunc("/autodiscover/autodiscover.xml", h.autodiscover)
	mux.HandleFunc("/Autodiscover/Autodiscover.xml", h.autodiscover)
	mux.Handle("/profile.mobileconfig", auth(http.HandlerFunc(h.appleProfile)))
}

// servesAddress reports whether addr is in one of our domains.
func (h *Handler) servesAddress(addr string) bool {
	at := strings.LastIndexByte(addr, '@')
	if at < 1 {
		return false
	}
	dom := strings.ToLower(addr[at+1:])
	for _, d := range h.o.Domains {
		if d == dom {
			return true
		}
	}
	return false
}

// Thunderbird autoconfig (https://wiki.mozilla.org/Thunderbird:Autoconfiguration).
type tbConfig struct {
	XMLName  xml.Name   `xml:"clientConfig"`
	Version  string     `xml:"version,attr"`
	Provider tbProvider `xml:"emailProvider"`
	// Thunderbird 128 and later also read CalDAV and CardDAV from here.
	AddressBook *tbDAV `xml:"addressBook,omitempty"`
	Calendar    *tbDAV `xml:"calendar,omitempty"`
}

type tbProvider struct {
	ID          string     `xml:"id,attr"`
	Domains     []string   `xml:"domain"`
	DisplayName string     `xml:"displayName"`
	ShortName   string     `xml:"displayShortName"`
	Incoming    []tbServer `xml:"incomingServer"`
	Outgoing    []tbServer `xml:"outgoingServer"`
}

type tbServer struct {
	Type           string `xml:"type,attr"`
	Hostname       string `xml:"hostname"`
	Port           int    `xml:"port"`
	SocketType     string `xml:"socketType"`
	Authentication string `xml:"authentication"`
	Username       string `xml:"username"`
}

type tbDAV struct {
	Type           string `xml:"type,attr"`
	Username       string `xml:"username"`
	Authentication string `xml:"authentication"`
	ServerURL      string `xml:"serverURL"`
}

func (h *Handler) thunderbird(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	email := r.URL.Query().Get("emailaddress")
	if email != "" && !h.servesAddress(email) {
		http.NotFound(w, r)
		return
	}
	o := h.o
	c := tbConfig{Version: "1.1", Provider: tbProvider{
		ID: o.Domains[0], Domains: o.Domains, DisplayName: o.DisplayName, ShortName: o.ShortName,
	}}
	server := func(typ string, port int, socket string) tbServer {
		return tbServer{Type: typ, Hostname: o.Hostname, Port: port, SocketType: socket,
			Authentication: "password-cleartext", Username: "%EMAILADDRESS%"}
	}
	if o.IMAPS > 0 {
		c.Provider.Incoming = append(c.Provider.Incoming, server("imap", o.IMAPS, "SSL"))
	}
	if o.IMAP > 0 {
		c.Provider.Incoming = append(c.Provider.Incoming, server("imap", o.IMAP, "STARTTLS"))
	}
	if o.Submissions > 0 {
		c.Provider.Outgoing = append(c.Provider.Outgoing, server("smtp", o.Submissions, "SSL"))
	}
	if o.Submission > 0 {
		c.Provider.Outgoing = append(c.Provider.Outgoing, server("smtp", o.Submission, "STARTTLS"))
	}
	if o.HTTPS > 0 {
		base := h.baseURL()
		c.AddressBook = &tbDAV{Type: "carddav", Username: "%EMAILADDRESS%", Authentication: "http-basic", ServerURL: base + "/.well-known/carddav"}
		c.Calendar = &tbDAV{Type: "caldav", Username: "%EMAILADDRESS%", Authentication: "http-basic", ServerURL: base + "/.well-known/caldav"}
	}
	writeXML(w, "application/xml", c)
}

func (h *Handler) baseURL() string {
	if h.o.HTTPS == 443 {
		return "https://" + h.o.Hostname
	}
	return "https://" + h.o.Hostname + ":" + strconv.Itoa(h.o.HTTPS)
}

func writeXML(w http.ResponseWriter, contentType string, v any) {
	w.Header().Set("Content-Type", contentType+"; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, xml.Header)
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	enc.Encode(v)
}

// Outlook POX Autodiscover (MS-OXDSCLI): the client posts its address.
type adRequest struct {
	XMLName xml.Name `xml:"Autodiscover"`
	Request struct {
		EMailAddress             string `xml:"EMailAddress"`
		AcceptableResponseSchema string `xml:"AcceptableResponseSchema"`
	} `xml:"Request"`
}

type adResponse struct {
	XMLName  xml.Name `xml:"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006 Autodiscover"`
	Response struct {
		XMLName xml.Name `xml:"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a Response"`
		Account struct {
			AccountType string       `xml:"AccountType"`
			Action      string       `xml:"Action"`
			Protocol    []adProtocol `xml:"Protocol"`
		} `xml:"Account"`
	}
}

type adProtocol struct {
	Type         string `xml:"Type"`
	Server       string `xml:"Server"`
	Port         int    `xml:"Port"`
	LoginName    string `xml:"LoginName"`
	SPA          string `xml:"SPA"`
	SSL          string `xml:"SSL"`
	Encryption   string `xml:"Encryption,omitempty"`
	AuthRequired string `xml:"AuthRequired"`
}

// maxRequest bounds what we read of an Autodiscover request.
const maxRequest = 16 << 10

func (h *Handler) autodiscover(w http.ResponseWriter, r *http.Request) {
	var email string
	switch r.Method {
	case http.MethodPost:
		var req adRequest
		dec := xml.NewDecoder(io.LimitReader(r.Body, maxRequest))
		dec.Strict = true
		dec.Entity = nil
		if err := dec.Decode(&req); err != nil {
			http.Error(w, "malformed Autodiscover request", http.StatusBadRequest)
			return
		}
		email = strings.TrimSpace(req.Request.EMailAddress)
	case http.MethodGet:
		email = r.URL.Query().Get("Email")
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !h.servesAddress(email) {
		http.NotFound(w, r)
		return
	}
	var resp adResponse
	resp.Response.Account.AccountType = "email"
	resp.Response.Account.Action = "settings"
	o := h.o
	if o.IMAPS > 0 {
		resp.Response.Account.Protocol = append(resp.Response.Account.Protocol, adProtocol{Type: "IMAP", Server: o.Hostname, Port: o.IMAPS, LoginName: email, SPA: "off", SSL: "on", AuthRequired: "on"})
	} else if o.IMAP > 0 {
		resp.Response.Account.Protocol = append(resp.Response.Account.Protocol, adProtocol{Type: "IMAP", Server: o.Hostname, Port: o.IMAP, LoginName: email, SPA: "off", SSL: "on", Encryption: "TLS", AuthRequired: "on"})
	}
	if o.Submissions > 0 {
		resp.Response.Account.Protocol = append(resp.Response.Account.Protocol, adProtocol{Type: "SMTP", Server: o.Hostname, Port: o.Submissions, LoginName: email, SPA: "off", SSL: "on", AuthRequired: "on"})
	} else if o.Submission > 0 {
		resp.Response.Account.Protocol = append(resp.Response.Account.Protocol, adProtocol{Type: "SMTP", Server: o.Hostname, Port: o.Submission, LoginName: email, SPA: "off", SSL: "on", Encryption: "TLS", AuthRequired: "on"})
	}
	writeXML(w, "application/xml", resp)
}
