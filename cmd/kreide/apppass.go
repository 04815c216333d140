package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"kreide/internal/admin"
)

func apppassCommand() *command {
	return &command{
		name:  "apppass",
		short: "create, list and revoke app passwords",
		long: `Manages app passwords. A phone, Thunderbird or another mail program logs in
with an app password of its own instead of the account's password: each one
is labelled, limited to some protocols (imap, smtp, dav), and can be revoked
alone, e.g. when a phone is lost. The account's password and other app
passwords keep working.

Example:
  kreide apppass add anna@school.example "Anna's phone"
  kreide apppass list anna@school.example
  kreide apppass revoke anna@school.example "Anna's phone"`,
		sub: []*command{
			{
				name:  "apppass add",
				args:  "ADDRESS LABEL",
				nargs: 2,
				short: "create an app password and print it once",
				long: `Creates an app password labelled LABEL for ADDRESS and prints it, once. It
unlocks the account's data like the password does, so it needs the account's
password: read from standard input when that is not a terminal (one line),
otherwise asked without echo.

Example:
  kreide apppass add anna@school.example "Anna's phone"
  kreide apppass add -scope imap,smtp anna@school.example Thunderbird`,
				flags: func(fs *flag.FlagSet) {
					fs.String("scope", "imap,smtp,dav", "what the app password may be used for: a comma-separated `LIST` of imap, smtp, dav")
				},
				run: apppassAdd,
			},
			{
				name:  "apppass list",
				args:  "ADDRESS",
				nargs: 1,
				short: "list an account's app passwords (not the secrets)",
				long: `Lists the app passwords of ADDRESS: label, scopes, when created and last used.
The app passwords themselves are shown only when created.

Example:
  kreide apppass list anna@school.example`,
				run: apppassList,
			},
			{
				name:  "apppass revoke",
				args:  "ADDRESS LABEL",
				nargs: 2,
				short: "revoke an app password",
				long: `Revokes the app password labelled LABEL of ADDRESS: from now on it no longer
logs in. The account's password and other app passwords keep working.

Example:
  kreide apppass revoke anna@school.example "Anna's phone"`,
				run: apppassRevoke,
			},
		},
	}
}

func apppassAdd(ctx context.Context, e *env, args []string) error {
	addr, label := args[0], args[1]
	var scopes []string
	for _, s := range strings.Split(e.flag("scope"), ",") {
		switch s = strings.ToLower(strings.TrimSpace(s)); s {
		case "imap", "smtp", "dav":
			scopes = append(scopes, s)
		case "":
		default:
			return usagef("-scope: unknown scope %q (want imap, smtp or dav)", s)
		}
	}
	if len(scopes) == 0 {
		return usagef("-scope: name at least one of imap, smtp, dav")
	}
	pw, err := e.secret(fmt.Sprintf("Password of %s: ", addr), "the account's password")
	if err != nil {
		return err
	}
	resp, _, err := e.do(ctx, admin.Request{Op: admin.OpAppPassAdd, Address: addr, Password: pw, Label: label, Scopes: scopes})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "App password %q for %s (%s):\n\n    %s\n\n", label, addr, strings.Join(scopes, ", "), resp.Token)
	fmt.Fprintf(e.stdout, "Enter it in the mail program instead of the account's password. It is shown only now.\n")
	fmt.Fprintf(e.stdout, "Revoke it with: kreide apppass revoke %s %q\n", addr, label)
	return nil
}

func apppassList(ctx context.Context, e *env, args []string) error {
	resp, _, err := e.do(ctx, admin.Request{Op: admin.OpAppPassList, Address: args[0]})
	if err != nil {
		return err
	}
	if len(resp.AppPasswords) == 0 {
		fmt.Fprintf(e.stderr, "%s has no app passwords.\n", args[0])
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "LABEL\tSCOPES\tCREATED\tLAST USED")
	for _, ap := range resp.AppPasswords {
		last := "never"
		if !ap.LastUsed.IsZero() {
			last = ap.LastUsed.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ap.Label, strings.Join(ap.Scopes, ","), ap.Created.Local().Format(time.DateTime), last)
	}
	return tw.Flush()
}

func apppassRevoke(ctx context.Context, e *env, args []string) error {
	addr, label := args[0], args[1]
	if _, _, err := e.do(ctx, admin.Request{Op: admin.OpAppPassRevoke, Address: addr, Label: label}); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Revoked the app password %q of %s.\n", label, addr)
	return nil
}
