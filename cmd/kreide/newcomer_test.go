package main

import (
	"bufio"
	"crypto/tls"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TestNewcomerDemo follows the README's first command: `kreide serve` with
// no config in an empty directory. It then does what Thunderbird does with
// only the printed address and password: fetch the autoconfig file over
// HTTPS, and log in to the IMAP and SMTP servers it names. The demo uses
// fixed ports (1143, 1993, 1465, 1587, 2525, 8443) on 127.0.0.1.
func TestNewcomerDemo(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(kreideBin, "serve")
	cmd.Dir = dir
	stdout, stderr := filepath.Join(dir, "stdout"), filepath.Join(dir, "stderr")
	of, _ := os.Create(stdout)
	ef, _ := os.Create(stderr)
	defer of.Close()
	defer ef.Close()
	cmd.Stdout, cmd.Stderr = of, ef
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	read := func(p string) string { b, _ := os.ReadFile(p); return string(b) }
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(read(stderr), "kreide is running"); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-exited:
			t.Fatalf("kreide serve exited: %v\n%s\n%s", err, read(stdout), read(stderr))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo not ready:\n%s\n%s", read(stdout), read(stderr))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "kreide-data", "system.db")); err != nil {
		t.Fatalf("demo data not in ./kreide-data: %v", err)
	}
	m := regexp.MustCompile(`Address: +(\S+)\s+Password: +(\S+)`).FindStringSubmatch(read(stdout))
	if m == nil {
		t.Fatalf("no demo account printed:\n%s", read(stdout))
	}
	user, password := m[1], m[2]
	settings := regexp.MustCompile(`CalDAV/CardDAV: (https://\S+)/`).FindStringSubmatch(read(stdout))
	if settings == nil {
		t.Fatalf("no HTTPS address printed:\n%s", read(stdout))
	}

	// What Thunderbird fetches for the address.
	insecure := &tls.Config{InsecureSkipVerify: true} // the demo's certificate is self-signed
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: insecure}, Timeout: 10 * time.Second}
	resp, err := hc.Get(settings[1] + "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=" + user)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Incoming []struct {
			Type     string `xml:"type,attr"`
			Hostname string `xml:"hostname"`
			Port     int    `xml:"port"`
			Socket   string `xml:"socketType"`
		} `xml:"emailProvider>incomingServer"`
		Outgoing []struct {
			Hostname string `xml:"hostname"`
			Port     int    `xml:"port"`
			Socket   string `xml:"socketType"`
		} `xml:"emailProvider>outgoingServer"`
	}
	err = xml.NewDecoder(resp.Body).Decode(&cfg)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(cfg.Incoming) == 0 || len(cfg.Outgoing) == 0 {
		t.Fatalf("autoconfig: %d %v %+v", resp.StatusCode, err, cfg)
	}

	// IMAP over TLS, as the config says.
	in := cfg.Incoming[0]
	if in.Type != "imap" || in.Socket != "SSL" {
		t.Fatalf("first incoming server %+v", in)
	}
	c, err := tls.Dial("tcp", net.JoinHostPort(in.Hostname, strconv.Itoa(in.Port)), insecure)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	r.ReadString('\n')
	fmt.Fprintf(c, "a LOGIN %q %q\r\n", user, password)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "a ") {
			if !strings.HasPrefix(line, "a OK") {
				t.Fatalf("IMAP login with the printed password: %s", line)
			}
			break
		}
	}

	// SMTP submission over TLS, as the config says.
	out := cfg.Outgoing[0]
	if out.Socket != "SSL" {
		t.Fatalf("first outgoing server %+v", out)
	}
	sc, err := smtp.DialTLS(net.JoinHostPort(out.Hostname, strconv.Itoa(out.Port)), insecure)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if err := sc.Auth(sasl.NewPlainClient("", user, password)); err != nil {
		t.Fatalf("SMTP login with the printed password: %v", err)
	}
}
