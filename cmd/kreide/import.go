package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"

	"kreide/internal/admin"
	"kreide/internal/portability"
	"kreide/store"
)

func importCommand() *command {
	return &command{
		name:  "import",
		args:  "ADDRESS PATH",
		nargs: 2,
		short: "import mail, calendars, contacts and files into an account",
		long: `Imports what is at PATH into the account ADDRESS. It finds out what PATH is:

  a Maildir (cur/, new/)    every folder (Maildir++ ".Folder.Sub" or nested)
                            becomes a mailbox "Folder/Sub", with its flags
  an mbox file              its messages go into a mailbox named after the
                            file (-mailbox NAME for another); a folder of mbox
                            files (Thunderbird's Local Folders) works too
  .ics files                events and tasks into the default calendar and
                            task list; files in a subfolder into a calendar
                            named after that folder
  .vcf files                contacts into the default address book (or one
                            named after the subfolder); files with many
                            contacts are split
  an unpacked kreide export all of the above from one 'kreide export'
  any other folder or file  into the file tree under /Imported/<name>/

-kind says what PATH is when the guess is wrong. A damaged item (a broken
message, event or contact) is reported and skipped; the rest is imported,
and the command then exits with status 1. Importing a folder of files or
calendars again replaces or keeps what is there; mail is imported again.

The account's password unlocks it: read from standard input when that is not
a terminal (one line), otherwise asked without echo. Works the same whether
kreide serve runs or not.

Example:
  kreide import anna@school.example ~/Maildir
  kreide import anna@school.example "Takeout/Mail/All mail.mbox" -mailbox Archive/Google
  kreide import anna@school.example Calendars/
  printf '%s\n' 'the password' | kreide import anna@school.example Documents/ -config kreide.toml`,
		flags: func(fs *flag.FlagSet) {
			fs.String("kind", "", "what PATH is: `KIND` "+strings.Join(portability.Sources, ", ")+" (default: detected)")
			fs.String("mailbox", "", "the `MAILBOX` an mbox goes into, or that a Maildir's folders go under")
			fs.String("collection", "", "the calendar or address book (by `NAME`, created if needed) for .ics and .vcf files")
		},
		run: importRun,
	}
}

// kindNames name the kinds of items in the summary.
var kindNames = []struct {
	kind      portability.Kind
	one, many string
}{
	{portability.KindMessage, "message", "messages"},
	{portability.KindEvent, "calendar object", "calendar objects"},
	{portability.KindContact, "contact", "contacts"},
	{portability.KindFile, "file", "files"},
	{portability.KindFolder, "folder", "folders"},
}

func countText(counts map[portability.Kind]int) string {
	var parts []string
	for _, k := range kindNames {
		switch n := counts[k.kind]; n {
		case 0:
		case 1:
			parts = append(parts, "1 "+k.one)
		default:
			parts = append(parts, fmt.Sprintf("%d %s", n, k.many))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

func importRun(ctx context.Context, e *env, args []string) error {
	addr, err := store.NormalizeAddress(args[0])
	if err != nil {
		return usagef("%s", strings.TrimPrefix(err.Error(), store.ErrInvalid.Error()+": "))
	}
	kind := strings.ToLower(e.flag("kind"))
	if kind != "" && !slices.Contains(portability.Sources, kind) {
		return usagef("-kind: unknown kind %q (want one of %s)", kind, strings.Join(portability.Sources, ", "))
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	plan, err := portability.Scan(args[1], portability.ScanOptions{Kind: kind, Mailbox: e.flag("mailbox"), Collection: e.flag("collection")})
	if err != nil {
		return err
	}
	defer plan.Close()
	fmt.Fprintf(e.stderr, "%s is %s: %s, %s.\n", args[1], plan.What, countText(plan.Counts()), humanBytes(plan.Bytes()))
	for _, n := range plan.Notes {
		fmt.Fprintf(e.stderr, "note: %s\n", n)
	}
	if plan.Items() == 0 {
		fmt.Fprintln(e.stdout, "Nothing to import.")
		return nil
	}
	pw, err := e.secret(fmt.Sprintf("Password of %s: ", addr), "the account's password")
	if err != nil {
		return err
	}

	view := newProgressView(e, "imported")
	p := portability.Progress{Items: plan.Items(), Bytes: plan.Bytes()}
	stored := make(map[portability.Kind]int)
	var storedBytes int64
	report := func(r portability.Result) {
		p.Done++
		p.DoneBytes += r.Item.Size
		if r.Err != nil {
			p.Failed++
			view.println(fmt.Sprintf("skipped %s: %s", r.Item.Source, oneLine(r.Err.Error())))
		} else {
			stored[r.Item.Kind]++
			storedBytes += r.Item.Size
		}
		view.update(p)
	}
	err = admin.Import(ctx, cfg, addr, pw, func(ctx context.Context, sink portability.Sink) error {
		return plan.Import(ctx, sink, report)
	})
	view.finish()
	if p.Done > 0 || err == nil {
		fmt.Fprintf(e.stdout, "Imported into %s: %s (%s).\n", addr, countText(stored), humanBytes(storedBytes))
	}
	if err != nil {
		if p.Done == 0 {
			return err
		}
		return fmt.Errorf("import stopped: %v (%d of %d items done; items already imported stay)", err, p.Done, p.Items)
	}
	if p.Failed > 0 {
		return fmt.Errorf("%d of %d items could not be imported (listed above); everything else was", p.Failed, p.Items)
	}
	return nil
}
