package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"kreide/config"
	"kreide/internal/admin"
)

func queueCommand() *command {
	return &command{
		name:  "queue",
		short: "list, retry or drop outgoing mail that waits for delivery",
		long: `Mail sent by users to other servers waits in the outbound queue until the
receiving server takes it. A message that cannot be delivered is retried
with growing pauses (2 minutes, doubling up to 4 hours) for 5 days; then its
sender gets a bounce.

These commands work the same whether kreide serve is running or not; while
it runs they act on its queue.

Example:
  kreide queue list -config kreide.toml
  kreide queue retry 3f9c2a7e1b -config kreide.toml`,
		sub: []*command{
			{
				name:  "queue list",
				short: "list the queued messages",
				long: `Lists the messages waiting for delivery, oldest first: id, sender, the
recipients still waiting, size, attempts, when the next one is due, and the
last error a receiving server gave.

Example:
  kreide queue list -config kreide.toml`,
				run: queueList,
			},
			{
				name:  "queue retry",
				args:  "ID",
				nargs: 1,
				short: "try a queued message again now",
				long: `Tries to deliver the queued message ID now rather than at its next attempt,
for example after the receiving server's problem was fixed. The ID is in
'kreide queue list'.

Example:
  kreide queue retry 3f9c2a7e1b -config kreide.toml`,
				run: queueRetry,
			},
			{
				name:  "queue drop",
				args:  "ID",
				nargs: 1,
				short: "delete a queued message without delivering it",
				long: `Deletes the queued message ID: it is not delivered, and its sender is not
told. The ID is in 'kreide queue list'.

Example:
  kreide queue drop 3f9c2a7e1b -config kreide.toml`,
				run: queueDrop,
			},
		},
	}
}

func queueList(ctx context.Context, e *env, args []string) error {
	resp, _, err := e.do(ctx, admin.Request{Op: admin.OpQueueList})
	if err != nil {
		return err
	}
	if len(resp.Queue) == 0 {
		fmt.Fprintln(e.stderr, "The queue is empty: all outgoing mail has been delivered.")
		return nil
	}
	now := time.Now()
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tFROM\tTO (WAITING)\tSIZE\tAGE\tATTEMPTS\tNEXT\tLAST ERROR")
	for _, q := range resp.Queue {
		from := q.From
		if from == "" {
			from = "<> (bounce)"
		}
		var waiting []string
		lastErr := ""
		for _, r := range q.Recipients {
			if r.State != "pending" {
				continue
			}
			waiting = append(waiting, r.Addr)
			if r.LastError != "" {
				lastErr = r.LastError
			}
		}
		next := "now"
		if d := q.NextAttempt.Sub(now); d > 0 {
			next = "in " + roughDuration(d)
		}
		if lastErr == "" {
			lastErr = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", q.ID, from, strings.Join(waiting, ","),
			config.Size(q.Size), roughDuration(now.Sub(q.Created)), q.Attempts, next, oneLineText(lastErr, 80))
	}
	return tw.Flush()
}

func queueRetry(ctx context.Context, e *env, args []string) error {
	resp, _, err := e.do(ctx, admin.Request{Op: admin.OpQueueRetry, ID: args[0]})
	if err != nil {
		return err
	}
	if resp.Woken {
		fmt.Fprintf(e.stdout, "Trying %s again now; see kreide queue list for the outcome.\n", args[0])
	} else {
		fmt.Fprintf(e.stdout, "%s is due now: kreide serve tries it within a minute (or when it next starts).\n", args[0])
	}
	return nil
}

func queueDrop(ctx context.Context, e *env, args []string) error {
	if _, _, err := e.do(ctx, admin.Request{Op: admin.OpQueueDrop, ID: args[0]}); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Dropped %s: it will not be delivered, and its sender is not told.\n", args[0])
	return nil
}

// roughDuration writes d the way a person says it: "3m", "5h", "2d".
func roughDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// oneLineText keeps s on one line of at most n runes.
func oneLineText(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
