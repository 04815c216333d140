package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"kreide/config"
	"kreide/internal/admin"
)

// terminal returns the file descriptor of standard input if it is a terminal.
func (e *env) terminal() (int, bool) {
	f, ok := e.stdin.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// line reads the next line of standard input. A script gives secrets this
// way: one per line, in the order the command asks for them. ok is false at
// the end of the input.
func (e *env) line() (s string, ok bool, err error) {
	if e.in == nil {
		e.in = bufio.NewReader(e.stdin)
	}
	s, err = e.in.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && s != "") {
		if errors.Is(err, io.EOF) {
			return "", false, nil
		}
		return "", false, err
	}
	return strings.TrimRight(s, "\r\n"), true, nil
}

// interruptible runs read, which waits for the terminal, until it returns or
// the command is interrupted (Ctrl-C); then the terminal is put back as it was
// (echo on), and the command ends with an error.
func (e *env) interruptible(fd int, read func() (string, error)) (string, error) {
	state, err := term.GetState(fd)
	if err != nil {
		return read()
	}
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := read()
		ch <- result{s, err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-e.ctx.Done():
		term.Restore(fd, state)
		return "", errors.New("interrupted")
	}
}

// secret reads one secret: without echo after a prompt on a terminal,
// otherwise as the next line of standard input. what names it in errors
// ("the password").
func (e *env) secret(prompt, what string) (string, error) {
	if fd, ok := e.terminal(); ok {
		fmt.Fprint(e.stderr, prompt)
		s, err := e.interruptible(fd, func() (string, error) {
			b, err := term.ReadPassword(fd)
			return string(b), err
		})
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("reading %s: %w", what, err)
		}
		return s, nil
	}
	s, ok, err := e.line()
	if err != nil {
		return "", fmt.Errorf("reading %s from standard input: %w", what, err)
	}
	if !ok {
		return "", fmt.Errorf("%s is missing: give it as a line on standard input, or run the command on a terminal to be asked", what)
	}
	return s, nil
}

// newPassword reads a new password: twice on a terminal, once from a script.
func (e *env) newPassword(prompt string) (string, error) {
	p, err := e.secret(prompt, "the new password")
	if err != nil {
		return "", err
	}
	if _, ok := e.terminal(); ok {
		if len(p) < 8 {
			return "", errors.New("the password is too short: use at least 8 characters")
		}
		again, err := e.secret("Type it again: ", "the new password")
		if err != nil {
			return "", err
		}
		if again != p {
			return "", errors.New("the two passwords differ; try again")
		}
	}
	return p, nil
}

// confirm asks a yes/no question on a terminal. Without a terminal it
// refuses, so a script never destroys data by accident.
func (e *env) confirm(question, refusal string) (bool, error) {
	if _, ok := e.terminal(); !ok {
		return false, errors.New(refusal)
	}
	fmt.Fprintf(e.stderr, "%s [y/N] ", question)
	fd, _ := e.terminal()
	s, err := e.interruptible(fd, func() (string, error) {
		s, _, err := e.line()
		return s, err
	})
	if err != nil {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

// do loads the config and carries out req (through serve's control socket
// when it runs). A command's failure becomes the returned error.
func (e *env) do(ctx context.Context, req admin.Request) (admin.Response, *config.Config, error) {
	cfg, err := e.loadConfig()
	if err != nil {
		return admin.Response{}, nil, err
	}
	resp, err := admin.Run(ctx, cfg, req)
	if err != nil {
		return resp, cfg, err
	}
	if resp.Error != "" {
		return resp, cfg, errors.New(resp.Error)
	}
	return resp, cfg, nil
}
