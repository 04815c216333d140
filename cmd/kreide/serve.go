package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"kreide/config"
	"kreide/crypto"
	"kreide/internal/admin"
	"kreide/protocols"
	"kreide/store"
)

func serveCommand() *command {
	return &command{
		name:  "serve",
		short: "run the server",
		long: `Runs kreide until it gets SIGINT (Ctrl-C) or SIGTERM, then stops cleanly.

Without -config it runs the built-in demo config: data in ./kreide-data,
loopback addresses and high ports (IMAP 1143, SMTP submission 1587), a
self-signed certificate, and on first start an account demo@localhost whose
password and recovery code it prints. On a real server, give a config file.

While it runs, it answers the admin commands (kreide user ..., kreide apppass
...) on the control socket <data dir>/control.sock. Only one kreide serve can
use a data dir at a time.

Example:
  kreide serve
  kreide serve -config /etc/kreide/kreide.toml`,
		run: serve,
	}
}

func serve(ctx context.Context, e *env, args []string) error {
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, nil))
	if e.configPath == "" {
		logger.Info("no -config given: using the built-in demo config (this machine only)", "data_dir", cfg.DataDir)
	}

	dir, err := admin.OpenDirectory(ctx, cfg)
	if err != nil {
		return err
	}
	defer dir.Close()

	srv, err := protocols.Start(ctx, cfg, dir, logger)
	if err != nil {
		return err
	}
	ctl, err := admin.Listen(dir, logger)
	if err != nil {
		srv.Close()
		srv.Wait()
		return err
	}
	defer ctl.Close()
	if q := srv.SMTP(); q != nil {
		ctl.SetQueue(q) // kreide queue retry: tried at once
	}
	logger.Info("admin commands accepted", "socket", ctl.Path())

	if err := createDemo(ctx, e, cfg, dir, srv); err != nil {
		srv.Close()
		srv.Wait()
		return err
	}
	logger.Info("kreide is running; stop it with Ctrl-C or SIGTERM", "hostname", cfg.Hostname, "data_dir", cfg.DataDir)

	err = srv.Wait()
	if cerr := ctl.Close(); cerr != nil {
		logger.Warn("closing the control socket", "err", cerr)
	}
	return err
}

// createDemo creates cfg.DemoAccount when the directory has no account yet,
// and prints how to use it.
func createDemo(ctx context.Context, e *env, cfg *config.Config, dir *store.Directory, srv *protocols.Server) error {
	if cfg.DemoAccount == "" {
		return nil
	}
	n, err := dir.CountAccounts(ctx)
	if err != nil || n > 0 {
		return err
	}
	password := crypto.NewToken(16)
	c, err := dir.CreateAccount(ctx, cfg.DemoAccount, password)
	if errors.Is(err, store.ErrExists) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating the demo account %s: %w", cfg.DemoAccount, err)
	}
	w := e.stdout
	login := c.Account.Login
	fmt.Fprintf(w, "\nCreated the demo account (demo_account in the config). Shown only this once:\n\n")
	fmt.Fprintf(w, "  Address:        %s\n", login)
	fmt.Fprintf(w, "  Password:       %s\n", password)
	fmt.Fprintf(w, "  Recovery code:  %s\n", c.RecoveryCode)
	fmt.Fprintf(w, "\nMail program settings (user name: %s):\n", login)
	port := func(key string) string {
		a, ok := srv.Addr(key).(*net.TCPAddr)
		if !ok {
			return ""
		}
		return strconv.Itoa(a.Port)
	}
	host := cfg.Hostname
	if p := port("listen.imap"); p != "" {
		fmt.Fprintf(w, "  IMAP:           %s port %s, STARTTLS\n", host, p)
	}
	if p := port("listen.imaps"); p != "" {
		fmt.Fprintf(w, "  IMAP:           %s port %s, SSL/TLS\n", host, p)
	}
	if p := port("listen.submission"); p != "" {
		fmt.Fprintf(w, "  SMTP (sending): %s port %s, STARTTLS\n", host, p)
	}
	if p := port("listen.submissions"); p != "" {
		fmt.Fprintf(w, "  SMTP (sending): %s port %s, SSL/TLS\n", host, p)
	}
	if p := port("listen.https"); p != "" {
		fmt.Fprintf(w, "  CalDAV/CardDAV: https://%s/\n", net.JoinHostPort(host, p))
		fmt.Fprintf(w, "  Files (WebDAV): https://%s/files/\n", net.JoinHostPort(host, p))
		fmt.Fprintf(w, "  iPhone/Mac:     https://%s/profile.mobileconfig (in Safari)\n", net.JoinHostPort(host, p))
	} else if cfg.Listen.HTTPS != "" && !protocols.Served("listen.https") {
		fmt.Fprintf(w, "  CalDAV/CardDAV: not served by this version of kreide yet\n")
	}
	if port("listen.imap")+port("listen.imaps")+port("listen.submission")+port("listen.submissions") == "" {
		fmt.Fprintf(w, "  (no mail frontend is served by this build yet)\n")
	}
	if cfg.TLS.SelfSigned && (cfg.TLS.CertFile == "" || cfg.TLS.KeyFile == "") {
		fmt.Fprintf(w, "\nThe certificate is self-signed: the mail program warns once; accept it for %s.\n", host)
	}
	fmt.Fprintf(w, "Use the password above, or better an app password: kreide apppass add %s LABEL\n\n", login)
	return nil
}
