package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"kreide/config"
	"kreide/internal/admin"
	"kreide/store"
)

func userCommand() *command {
	return &command{
		name:  "user",
		short: "add, list, change and delete accounts",
		long: `Manages accounts. These commands work the same whether kreide serve is
running or not: when it runs they go through its control socket
(<data dir>/control.sock), otherwise they open the data dir directly.

Example:
  kreide user add anna@school.example -config kreide.toml
  kreide user list -config kreide.toml`,
		sub: []*command{
			{
				name:  "user add",
				args:  "ADDRESS",
				nargs: 1,
				short: "create an account and print its recovery code",
				long: `Creates the account ADDRESS (its domain must be one of the config's domains).
The password is read from standard input when that is not a terminal (one
line), otherwise it is asked twice without echo. At least 8 characters.

Prints the account's recovery code, once. Everything the user stores is
encrypted with a key that only the password or this code unlocks: keep the
code on paper with the user. Without the password or the code, nobody, the
admin included, can ever read that account's data again.

Example:
  kreide user add anna@school.example
  printf '%s\n' 'a long password' | kreide user add anna@school.example -config kreide.toml`,
				run: userAdd,
			},
			{
				name:  "user list",
				short: "list accounts with their aliases and quota",
				long: `Lists every account: login, aliases and quota.

Example:
  kreide user list -config kreide.toml`,
				run: userList,
			},
			{
				name:  "user passwd",
				args:  "ADDRESS",
				nargs: 1,
				short: "change an account's password (needs the current one)",
				long: `Changes the password of ADDRESS. Asks for the current password, then the new
one (twice on a terminal; from a script: two lines on standard input, current
then new).

The account's data is encrypted with a key the password unlocks, so the
current password is needed. If it is forgotten, use 'kreide user recover' with
the account's recovery code instead.

Example:
  kreide user passwd anna@school.example
  printf '%s\n%s\n' 'old password' 'new password' | kreide user passwd anna@school.example`,
				run: userPasswd,
			},
			{
				name:  "user delete",
				args:  "ADDRESS",
				nargs: 1,
				short: "delete an account and all of its data",
				long: `Deletes the account ADDRESS and every byte stored for it: mail, app
passwords, recovery code, aliases. This cannot be undone. Asks for
confirmation on a terminal; without a terminal, -yes is required.

Example:
  kreide user delete anna@school.example
  kreide user delete -yes anna@school.example -config kreide.toml`,
				flags: func(fs *flag.FlagSet) { fs.Bool("yes", false, "do not ask for confirmation") },
				run:   userDelete,
			},
			{
				name:  "user quota",
				args:  "ADDRESS SIZE",
				nargs: 2,
				short: "set an account's storage quota",
				long: `Sets the storage quota of ADDRESS (mail, and later calendars, contacts and
files together). SIZE is a number with a unit: B, KB, MB, GB, TB (powers of
1000) or KiB, MiB, GiB, TiB (powers of 1024). New accounts get
limits.default_quota from the config.

Example:
  kreide user quota anna@school.example 5GiB`,
				run: userQuota,
			},
			{
				name:  "user recover",
				args:  "ADDRESS",
				nargs: 1,
				short: "set a new password with the recovery code",
				long: `Sets a new password for ADDRESS with its recovery code, for when the password
is forgotten. Asks for the recovery code, then the new password (from a
script: two lines on standard input). The old code is then used up: prints
the new recovery code, to be kept on paper again.

Example:
  kreide user recover anna@school.example
  printf '%s\n%s\n' 'abcd-efgh-...' 'new password' | kreide user recover anna@school.example`,
				run: userRecover,
			},
		},
	}
}

func userAdd(ctx context.Context, e *env, args []string) error {
	addr, err := store.NormalizeAddress(args[0])
	if err != nil {
		return usagef("%s", strings.TrimPrefix(err.Error(), store.ErrInvalid.Error()+": "))
	}
	pw, err := e.newPassword(fmt.Sprintf("Password for %s: ", addr))
	if err != nil {
		return err
	}
	resp, _, err := e.do(ctx, admin.Request{Op: admin.OpUserAdd, Address: addr, Password: pw})
	if err != nil {
		return err
	}
	login := addr
	if resp.Account != nil {
		login = resp.Account.Login
	}
	fmt.Fprintf(e.stdout, "Created %s.\n\n", login)
	printRecoveryCode(e, login, resp.RecoveryCode)
	return nil
}

func printRecoveryCode(e *env, login, code string) {
	fmt.Fprintf(e.stdout, "Recovery code: %s\n\n", code)
	fmt.Fprintf(e.stdout, "This is shown only now. Write it down and give it to the owner of %s:\n", login)
	fmt.Fprintf(e.stdout, "if the password is forgotten, 'kreide user recover %s' sets a new one with it.\n", login)
	fmt.Fprintf(e.stdout, "The data is encrypted: without the password or this code, nobody (the admin included) can read it again.\n")
}

func userList(ctx context.Context, e *env, args []string) error {
	resp, _, err := e.do(ctx, admin.Request{Op: admin.OpUserList})
	if err != nil {
		return err
	}
	if len(resp.Accounts) == 0 {
		fmt.Fprintln(e.stderr, "No accounts yet: add one with 'kreide user add ADDRESS'.")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "LOGIN\tALIASES\tQUOTA")
	for _, a := range resp.Accounts {
		aliases := strings.Join(a.Aliases, ",")
		if aliases == "" {
			aliases = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Login, aliases, config.Size(a.Quota))
	}
	return tw.Flush()
}

func userPasswd(ctx context.Context, e *env, args []string) error {
	addr := args[0]
	old, err := e.secret(fmt.Sprintf("Current password of %s: ", addr), "the current password")
	if err != nil {
		return err
	}
	pw, err := e.newPassword(fmt.Sprintf("New password for %s: ", addr))
	if err != nil {
		return err
	}
	if _, _, err := e.do(ctx, admin.Request{Op: admin.OpUserPasswd, Address: addr, Password: old, NewPassword: pw}); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Changed the password of %s. App passwords and the recovery code still work.\n", addr)
	return nil
}

func userDelete(ctx context.Context, e *env, args []string) error {
	addr := args[0]
	if e.flag("yes") != "true" {
		ok, err := e.confirm(
			fmt.Sprintf("Delete %s and all of its mail and data for ever?", addr),
			"not deleting without confirmation: run on a terminal to be asked, or add -yes")
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("not deleted: %s is unchanged", addr)
		}
	}
	if _, _, err := e.do(ctx, admin.Request{Op: admin.OpUserDelete, Address: addr}); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Deleted %s and all of its data.\n", addr)
	return nil
}

func userQuota(ctx context.Context, e *env, args []string) error {
	addr := args[0]
	size, err := config.ParseSize(args[1])
	if err != nil {
		return usagef("%v", err)
	}
	if size <= 0 {
		return usagef("the quota must be more than 0 bytes")
	}
	if _, _, err := e.do(ctx, admin.Request{Op: admin.OpUserQuota, Address: addr, Quota: int64(size)}); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "The quota of %s is now %s.\n", addr, size)
	return nil
}

func userRecover(ctx context.Context, e *env, args []string) error {
	addr := args[0]
	code, err := e.secret(fmt.Sprintf("Recovery code of %s: ", addr), "the recovery code")
	if err != nil {
		return err
	}
	pw, err := e.newPassword(fmt.Sprintf("New password for %s: ", addr))
	if err != nil {
		return err
	}
	resp, _, err := e.do(ctx, admin.Request{Op: admin.OpUserRecover, Address: addr, RecoveryCode: code, NewPassword: pw})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Set a new password for %s. The old recovery code no longer works.\n\n", addr)
	printRecoveryCode(e, addr, resp.RecoveryCode)
	return nil
}
