package protocols

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"kreide/store"
	"kreide/store/storetest"
)

// obsScrape fetches /metrics from the admin listener and returns each
// sample line's value by its name and labels as written.
func obsScrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics: %s\n%s", resp.Status, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func obsSubmit(t *testing.T, addr, user, pass, to, subject string) {
	t.Helper()
	c, err := gosmtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example.org"); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%d@example.org>\r\nDate: %s\r\n\r\nHello.\r\n",
		user, to, subject, time.Now().UnixNano(), time.Now().Format(time.RFC1123Z))
	if err := c.SendMail(user, []string{to}, strings.NewReader(msg)); err != nil {
		t.Fatalf("sending: %v", err)
	}
	c.Quit()
}

// Scraping /metrics after IMAP logins and SMTP deliveries shows them; the
// log events that the counters rely on are pinned here.
func TestMetricsEndpoint(t *testing.T) {
	ctx := context.Background()
	dir := storetest.Open(t)
	if _, err := dir.CreateAccount(ctx, "anna@example.org", "password one"); err != nil {
		t.Fatal(err)
	}
	// A queued message not due for a day: the queue gauge counts it.
	sp := dir.Queue().NewSpool()
	io.WriteString(sp, "Subject: later\r\n\r\nlater\r\n")
	if err := sp.Finish(); err != nil {
		t.Fatal(err)
	}
	qm := &store.QueueMessage{From: "anna@example.org", Recipients: []store.QueueRecipient{{Addr: "x@remote.example", State: store.RcptPending}},
		Created: time.Now(), NextAttempt: time.Now().Add(24 * time.Hour)}
	if err := dir.Queue().Add(ctx, qm, sp); err != nil {
		t.Fatal(err)
	}
	sp.Close()

	cfg := serverTestConfig(dir)
	cfg.Listen.Admin = "127.0.0.1:0"
	sctx, cancel := context.WithCancel(ctx)
	srv, err := Start(sctx, cfg, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); srv.Wait() })
	base := "http://" + srv.Addr("listen.admin").String()
	if srv.SMTP() == nil {
		t.Error("SMTP() is nil with SMTP listeners")
	}

	before := obsScrape(t, base)
	for _, name := range []string{
		`kreide_logins_total{proto="imap",result="ok"}`, `kreide_logins_total{proto="smtp",result="failed"}`,
		`kreide_deliveries_total{path="local"}`, `kreide_queue_messages`, `kreide_accounts`, `go_goroutines`,
	} {
		if _, ok := before[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if before["kreide_queue_messages"] != 1 || before["kreide_accounts"] != 1 {
		t.Errorf("queue %v, accounts %v; want 1 and 1", before["kreide_queue_messages"], before["kreide_accounts"])
	}

	// IMAP: two logins, one wrong password.
	imapAddr := srv.Addr("listen.imap").String()
	for _, pass := range []string{"password one", "password one", "wrong password"} {
		c, err := imapclient.DialInsecure(imapAddr, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Login("anna@example.org", pass).Wait()
		if (err == nil) != (pass == "password one") {
			t.Errorf("IMAP login with %q: %v", pass, err)
		}
		c.Logout().Wait()
		c.Close()
	}
	// SMTP: two messages delivered locally, one failed authentication.
	sub := srv.Addr("listen.submission").String()
	obsSubmit(t, sub, "anna@example.org", "password one", "anna@example.org", "one")
	obsSubmit(t, sub, "anna@example.org", "password one", "anna@example.org", "two")
	c, err := gosmtp.Dial(sub)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "anna@example.org", "wrong password")); err == nil {
		t.Error("SMTP AUTH with a wrong password succeeded")
	}
	c.Close()

	// Connections are counted when accepted, closed ones leave the gauge.
	var after map[string]float64
	deadline := time.Now().Add(10 * time.Second)
	for {
		after = obsScrape(t, base)
		if after[`kreide_connections_open{listener="imap"}`] == 0 && after[`kreide_connections_open{listener="submission"}`] == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	diff := func(name string) float64 { return after[name] - before[name] }
	for name, want := range map[string]float64{
		`kreide_connections_total{listener="imap"}`:         3,
		`kreide_connections_total{listener="submission"}`:   3,
		`kreide_connections_open{listener="imap"}`:          0,
		`kreide_logins_total{proto="imap",result="failed"}`: 1,
		`kreide_logins_total{proto="smtp",result="failed"}`: 1,
		`kreide_deliveries_total{path="local"}`:             2,
	} {
		if got := diff(name); got != want {
			t.Errorf("%s moved by %v, want %v", name, got, want)
		}
	}
	commands := 0.0
	for name, v := range after {
		if strings.HasPrefix(name, "kreide_command_duration_seconds_count{") && strings.Contains(name, `proto="imap"`) {
			commands += v
		}
	}
	if commands == 0 {
		t.Error("no IMAP command was counted in kreide_command_duration_seconds")
	}
	if _, ok := any(dir).(loginHooker); ok {
		// With the store's login hook, successful logins count too.
		if got := diff(`kreide_logins_total{proto="imap",result="ok"}`); got != 2 {
			t.Errorf("IMAP logins ok moved by %v, want 2", got)
		}
	} else {
		t.Log("store.Directory has no SetLoginHook yet: successful logins are not counted")
	}

	// The health check.
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("/healthz: %s %q", resp.Status, body)
	}
	if resp, err := http.Get(base + "/nothing"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("/nothing: %v %v", resp.Status, err)
	}
}
