// Command kreide is a groupware server for schools: mail (IMAP, SMTP), and
// later calendars, contacts and files, in one binary with one config file.
//
//	kreide serve [-config FILE]      run the server
//	kreide user ...                  manage accounts
//	kreide apppass ...               manage app passwords
//
// Every command has --help. Administration commands work the same whether
// kreide serve runs or not (see internal/admin).
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"kreide/config"
)

// command is one node of the command tree: either it runs, or it has subcommands.
type command struct {
	name     string // full name, e.g. "user add"
	args     string // synopsis of the arguments after the flags, e.g. "ADDRESS"
	short    string // one line for the parent's list
	long     string // what it does, then "Example:" lines
	sub      []*command
	flags    func(fs *flag.FlagSet) // defines the command's flags (besides -config)
	run      func(ctx context.Context, env *env, args []string) error
	nargs    int  // number of positional arguments run expects
	noConfig bool // the command takes no -config
}

// env is what a command runs with.
type env struct {
	ctx            context.Context // cancelled by SIGINT or SIGTERM
	stdin          io.Reader
	in             *bufio.Reader // stdin, once read by lines
	stdout, stderr io.Writer
	configPath     string
	fs             *flag.FlagSet
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func root() *command {
	return &command{
		name:  "",
		short: "groupware server for schools",
		long: `kreide serves mail (IMAP, SMTP) for a school from one binary and one config
file. Without -config it runs a demo on this machine only: data in
./kreide-data, loopback addresses, high ports, a self-signed certificate and a
demo account whose password it prints.

Example:
  kreide serve                        # try it out
  kreide serve -config kreide.toml    # a real server
  kreide user add anna@school.example -config kreide.toml`,
		sub: []*command{serveCommand(), userCommand(), apppassCommand(), configCommand(), importCommand(), exportCommand(),
			setupCommand(), dnsCommand(), queueCommand(), backupCommand(), restoreCommand(), verifyCommand()},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal stops kreide cleanly; a second one kills it.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit status: 0 on
// success, 1 when the command failed, 2 for a mistake in the command line.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := root()
	// Walk down to the named subcommand.
	for len(cmd.sub) > 0 {
		// A command with subcommands may also run by itself ("kreide dns").
		if cmd.run != nil && (len(args) == 0 || strings.HasPrefix(args[0], "-") && !isHelp(args[0])) {
			break
		}
		if len(args) == 0 {
			var names []string
			for _, s := range cmd.sub {
				names = append(names, strings.TrimSpace(s.name[len(cmd.name):]))
			}
			fmt.Fprintf(stderr, "%s: missing command (one of: %s)\n", prog(cmd), strings.Join(names, ", "))
			fmt.Fprintf(stderr, "Run '%s --help' for more.\n", prog(cmd))
			return 2
		}
		if isHelp(args[0]) {
			printUsage(stdout, cmd, nil)
			return 0
		}
		next := findSub(cmd, args[0])
		if next == nil {
			fmt.Fprintf(stderr, "kreide: unknown command %q\n", strings.TrimSpace(cmd.name+" "+args[0]))
			fmt.Fprintf(stderr, "Run '%s --help' for the list of commands.\n", prog(cmd))
			return 2
		}
		cmd, args = next, args[1:]
	}

	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet(prog(cmd), flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors and help are printed below
	if !cmd.noConfig {
		fs.StringVar(&e.configPath, "config", "", "read the config from `FILE` (default: none, the built-in demo config)")
	}
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	e.fs = fs
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout, cmd, fs)
		return 0
	}
	if err == nil && len(pos) != cmd.nargs {
		switch {
		case len(pos) < cmd.nargs:
			err = fmt.Errorf("missing %s", strings.Join(strings.Fields(cmd.args)[len(pos):], " "))
		default:
			err = fmt.Errorf("unexpected argument %q", pos[cmd.nargs])
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog(cmd), err)
		fmt.Fprintf(stderr, "Usage: %s\nRun '%s --help' for more.\n", synopsis(cmd), prog(cmd))
		return 2
	}
	if err := cmd.run(ctx, e, pos); err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for more.\n", prog(cmd), err, prog(cmd))
			return 2
		}
		fmt.Fprintf(stderr, "kreide: %s\n", oneLine(err.Error()))
		return 1
	}
	return 0
}

// oneLine keeps an error to one line on the terminal: config errors may list
// several problems, one per line, which stay readable indented.
func oneLine(msg string) string {
	return strings.ReplaceAll(strings.TrimSpace(msg), "\n", "\n  ")
}

func findSub(cmd *command, name string) *command {
	for _, s := range cmd.sub {
		if s.name == strings.TrimSpace(cmd.name+" "+name) {
			return s
		}
	}
	return nil
}

func prog(cmd *command) string { return strings.TrimSpace("kreide " + cmd.name) }

func synopsis(cmd *command) string {
	s := prog(cmd)
	if len(cmd.sub) > 0 {
		return s + " COMMAND [flags]"
	}
	s += " [flags]"
	if cmd.args != "" {
		s += " " + cmd.args
	}
	return s
}

// parseInterleaved parses flags given before, between or after the
// positional arguments ("kreide user add anna@x -config k.toml"), which the
// flag package alone does not. After "--" everything is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func printUsage(w io.Writer, cmd *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", synopsis(cmd), cmd.long)
	if len(cmd.sub) > 0 {
		fmt.Fprintf(w, "\nCommands:\n")
		tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
		for _, s := range cmd.sub {
			fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(s.name[len(cmd.name):]), s.short)
		}
		tw.Flush()
		fmt.Fprintf(w, "\nRun '%s COMMAND --help' for a command's details.\n", prog(cmd))
		return
	}
	if fs != nil {
		var buf bytes.Buffer
		fs.SetOutput(&buf)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		if buf.Len() > 0 {
			fmt.Fprintf(w, "\nFlags:\n%s", buf.String())
		}
	}
}

// flag returns the value of the command's flag name as text.
func (e *env) flag(name string) string {
	if f := e.fs.Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

// loadConfig reads -config FILE, or returns the built-in demo config.
func (e *env) loadConfig() (*config.Config, error) {
	if e.configPath == "" {
		return config.Default(), nil
	}
	return config.Load(e.configPath)
}

func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}
