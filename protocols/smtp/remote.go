package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"kreide/store"
)

// Outbound SMTP client (RFC 5321): MX lookup with the implicit MX fallback,
// each address of each host in preference order, opportunistic STARTTLS
// (RFC 3207; a failed handshake is retried once in clear), one transaction
// per destination domain.

const (
	dialTimeout    = 30 * time.Second
	commandTimeout = 5 * time.Minute  // RFC 5321 section 4.5.3.2
	dataTimeout    = 10 * time.Minute // for the final reply to DATA
)

func allOf(rcpts []string, o outcome) map[string]outcome {
	m := make(map[string]outcome, len(rcpts))
	for _, r := range rcpts {
		m[r] = o
	}
	return m
}

func temp(msg string, args ...any) outcome {
	return outcome{kind: tempFail, msg: fmt.Sprintf(msg, args...)}
}

// mxHosts returns the hosts to try for domain, best first. A permanent
// problem (null MX, RFC 7505) comes back as a permFail outcome.
func (qr *queueRunner) mxHosts(ctx context.Context, domain string) ([]string, *outcome) {
	ctx, cancel := context.WithTimeout(ctx, dnsTimeout)
	defer cancel()
	mxs, err := qr.s.o.Resolver.LookupMX(ctx, domain)
	if err != nil {
		if isNotFound(err) {
			return []string{domain}, nil // RFC 5321 section 5.1: implicit MX
		}
		o := temp("MX lookup for %s: %v", domain, err)
		return nil, &o
	}
	if len(mxs) == 1 && strings.Trim(mxs[0].Host, ".") == "" {
		o := outcome{kind: permFail, msg: "5.1.10 " + domain + " does not accept mail (null MX)"}
		return nil, &o
	}
	slices.SortStableFunc(mxs, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
	hosts := make([]string, 0, len(mxs))
	for _, mx := range mxs {
		if h := strings.TrimSuffix(mx.Host, "."); h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts, nil
}

// deliverDomain delivers m to rcpts, all of one domain.
func (qr *queueRunner) deliverDomain(ctx context.Context, m *store.QueueMessage, domain string, rcpts []string) map[string]outcome {
	hosts, o := qr.mxHosts(ctx, domain)
	if o != nil {
		return allOf(rcpts, *o)
	}
	last := temp("no mail server of %s could be reached", domain)
	for _, host := range hosts {
		lctx, cancel := context.WithTimeout(ctx, dnsTimeout)
		addrs, err := qr.s.o.Resolver.LookupIPAddr(lctx, host)
		cancel()
		if err != nil {
			if isNotFound(err) && host == domain && len(hosts) == 1 {
				return allOf(rcpts, outcome{kind: permFail, msg: "5.1.2 domain " + domain + " has no mail server"})
			}
			last = temp("address lookup for %s: %v", host, err)
			continue
		}
		for _, a := range addrs {
			if ctx.Err() != nil {
				return allOf(rcpts, temp("shutting down"))
			}
			res, ok := qr.transact(ctx, m, host, a.IP, rcpts, true)
			if ok {
				return res
			}
			last = res[rcpts[0]]
		}
	}
	return allOf(rcpts, last)
}

// client is one SMTP client connection.
type client struct {
	conn net.Conn
	tp   *textproto.Conn
	mta  string
	ext  map[string]string
}

// cmd sends a command and reads the reply. A reply outside expect's class
// comes back as an outcome; err is for network and protocol failures.
func (c *client) cmd(timeout time.Duration, expect int, format string, args ...any) (int, string, error) {
	c.conn.SetDeadline(time.Now().Add(timeout))
	if format != "" {
		if err := c.tp.PrintfLine(format, args...); err != nil {
			return 0, "", err
		}
	}
	code, msg, err := c.tp.ReadResponse(expect)
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code, te.Msg, nil
	}
	return code, msg, err
}

func (c *client) reply(code int, msg string) outcome {
	o := outcome{kind: tempFail, code: code, msg: strings.ReplaceAll(fmt.Sprintf("%d %s", code, msg), "\n", " "), mta: c.mta}
	switch {
	case code >= 200 && code < 300:
		o.kind = sent
	case code >= 500:
		o.kind = permFail
	}
	return o
}

func (c *client) ehlo(hostname string) (int, string, error) {
	code, msg, err := c.cmd(commandTimeout, 250, "EHLO %s", hostname)
	if err != nil || code != 250 {
		return code, msg, err
	}
	c.ext = map[string]string{}
	for _, line := range strings.Split(msg, "\n")[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		c.ext[strings.ToUpper(k)] = v
	}
	return code, msg, nil
}

// transact runs one SMTP transaction with the host at ip. ok is false when
// the host could not be talked to (connection, greeting, EHLO): the caller
// then tries the next address.
func (qr *queueRunner) transact(ctx context.Context, m *store.QueueMessage, host string, ip net.IP, rcpts []string, useTLS bool) (map[string]outcome, bool) {
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(qr.s.o.RemotePort))
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return allOf(rcpts, temp("connect to %s [%s]: %v", host, ip, err)), false
	}
	defer func() { conn.Close() }()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c := &client{conn: conn, tp: textproto.NewConn(conn), mta: host}
	fail := func(format string, args ...any) (map[string]outcome, bool) {
		o := temp(format, args...)
		o.mta = host
		return allOf(rcpts, o), false
	}
	if code, msg, err := c.cmd(commandTimeout, 220, ""); err != nil || code != 220 {
		return fail("greeting of %s: %d %s %v", host, code, oneLine(msg), err)
	}
	hostname := qr.s.o.Hostname
	if code, msg, err := c.ehlo(hostname); err != nil || code != 250 {
		return fail("EHLO to %s: %d %s %v", host, code, oneLine(msg), err)
	}
	if _, ok := c.ext["STARTTLS"]; ok && useTLS {
		if code, _, err := c.cmd(commandTimeout, 220, "STARTTLS"); err == nil && code == 220 {
			cfg := qr.s.o.OutboundTLS.Clone()
			if cfg.ServerName == "" {
				cfg.ServerName = host
			}
			tc := tls.Client(conn, cfg)
			tc.SetDeadline(time.Now().Add(commandTimeout))
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				qr.s.log.Info("STARTTLS failed, retrying in clear", "mta", host, "err", err)
				return qr.transact(ctx, m, host, ip, rcpts, false)
			}
			conn = tc
			c = &client{conn: tc, tp: textproto.NewConn(tc), mta: host}
			if code, msg, err := c.ehlo(hostname); err != nil || code != 250 {
				return fail("EHLO after STARTTLS to %s: %d %s %v", host, code, oneLine(msg), err)
			}
		}
	}
	return c.send(m, qr, rcpts), true
}

// send runs MAIL, RCPT and DATA on an open connection.
func (c *client) send(m *store.QueueMessage, qr *queueRunner, rcpts []string) map[string]outcome {
	res := make(map[string]outcome, len(rcpts))
	netFail := func(stage string, err error) map[string]outcome {
		for _, r := range rcpts {
			if o, ok := res[r]; !ok || o.kind == sent {
				res[r] = outcome{kind: tempFail, msg: fmt.Sprintf("%s: %v", stage, err), mta: c.mta}
			}
		}
		return res
	}
	params := ""
	if _, ok := c.ext["8BITMIME"]; ok {
		params += " BODY=8BITMIME"
	}
	if _, ok := c.ext["SIZE"]; ok {
		params += fmt.Sprintf(" SIZE=%d", m.Size+int64(len(m.Prefix)))
	}
	if m.UTF8 {
		if _, ok := c.ext["SMTPUTF8"]; !ok {
			return allOf(rcpts, outcome{kind: permFail, msg: "5.6.7 " + c.mta + " does not support SMTPUTF8", mta: c.mta})
		}
		params += " SMTPUTF8"
	}
	code, msg, err := c.cmd(commandTimeout, 250, "MAIL FROM:<%s>%s", m.From, params)
	if err != nil {
		return netFail("MAIL FROM", err)
	}
	if code != 250 {
		return allOf(rcpts, c.reply(code, msg))
	}
	var accepted []string
	for _, r := range rcpts {
		code, msg, err := c.cmd(commandTimeout, 25, "RCPT TO:<%s>", r)
		if err != nil {
			return netFail("RCPT TO", err)
		}
		if code == 250 || code == 251 {
			accepted = append(accepted, r)
			continue
		}
		res[r] = c.reply(code, msg)
	}
	if len(accepted) == 0 {
		c.cmd(commandTimeout, 221, "QUIT")
		return res
	}
	code, msg, err = c.cmd(commandTimeout, 354, "DATA")
	if err != nil {
		return netFail("DATA", err)
	}
	if code != 354 {
		for _, r := range accepted {
			res[r] = c.reply(code, msg)
		}
		return res
	}
	if err := c.writeData(m, qr); err != nil {
		return netFail("sending message", err)
	}
	code, msg, err = c.cmd(dataTimeout, 250, "")
	if err != nil {
		return netFail("end of data", err)
	}
	for _, r := range accepted {
		res[r] = c.reply(code, msg)
	}
	c.cmd(commandTimeout, 221, "QUIT")
	return res
}

func (c *client) writeData(m *store.QueueMessage, qr *queueRunner) error {
	body, err := qr.q.Open(qr.s.ctx, m)
	if err != nil {
		return err
	}
	defer body.Close()
	c.conn.SetDeadline(time.Now().Add(dataTimeout))
	dw := c.tp.DotWriter()
	if _, err := dw.Write(m.Prefix); err != nil {
		return err
	}
	if _, err := io.Copy(dw, body); err != nil {
		// No final dot: the connection is dropped, so the remote never
		// takes a truncated message for a whole one.
		return err
	}
	return dw.Close()
}
