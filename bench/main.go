// Command bench measures kreide side by side with the servers a school would
// otherwise run (Dovecot, Postfix, Radicale, Apache mod_dav), on this machine,
// with the same data and workload, and prints one table. Peers that are not
// installed are skipped with a note. See README.md, "Benchmarks".
//
//	go run ./bench [-only imap,smtp,caldav,webdav,scale] [-quick]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"

	"kreide/bench/benchkit"
	"kreide/bench/dav"
	"kreide/bench/mail"
)

type suite struct {
	name string
	run  func(ctx context.Context, o benchkit.Options) ([]benchkit.Result, error)
}

var suites = []suite{
	{"imap", mail.IMAP},
	{"smtp", mail.SMTP},
	{"caldav", dav.CalDAV},
	{"webdav", dav.WebDAV},
	{"scale", dav.Scale},
}

func main() {
	only := flag.String("only", "", "comma-separated suites to run (default: all): imap, smtp, caldav, webdav, scale")
	quick := flag.Bool("quick", false, "smaller data sets, for a first look")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	o := benchkit.Options{Quick: *quick, Log: os.Stderr}
	var results []benchkit.Result
	for _, s := range suites {
		if *only != "" && !slices.Contains(strings.Split(*only, ","), s.name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "== %s\n", s.name)
		rs, err := s.run(ctx, o)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", s.name, err)
		}
		results = append(results, rs...)
	}
	benchkit.PrintTable(os.Stdout, results)
}
