package admin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"kreide/protocols/smtp"
	"kreide/store"
)

// Commands about the server as a whole rather than one account: the DNS
// records to publish, the outbound queue, backups and checks.

// DNSRecord is one record the administrator publishes (smtp.DNSRecord).
type DNSRecord struct {
	Name  string `json:"name"` // fully qualified, without the final dot
	Type  string `json:"type"` // MX, TXT, SRV, CNAME
	Value string `json:"value"`
	Note  string `json:"note"`
}

// ZoneLine is the record as a zone-file line (long TXT values split into
// strings of at most 255 bytes).
func (r DNSRecord) ZoneLine() string {
	return smtp.DNSRecord{Name: r.Name, Type: r.Type, Value: r.Value, Note: r.Note}.ZoneLine()
}

// QueueItem is one message of the outbound queue as the administrator sees it.
type QueueItem struct {
	ID          string           `json:"id"`
	From        string           `json:"from"` // "" for a bounce
	Recipients  []QueueRecipient `json:"recipients"`
	Size        int64            `json:"size"`
	Created     time.Time        `json:"created"`
	NextAttempt time.Time        `json:"next_attempt"`
	LastAttempt time.Time        `json:"last_attempt,omitzero"`
	Attempts    int              `json:"attempts"`
}

// QueueRecipient is one recipient of a queued message.
type QueueRecipient struct {
	Addr      string `json:"addr"`
	State     string `json:"state"` // pending, sent, failed
	LastError string `json:"last_error,omitempty"`
}

// Queue is the running server's outbound queue (*smtp.Server): acting on it
// rather than on the store alone wakes the delivery loop at once.
type Queue interface {
	QueueRetry(ctx context.Context, id string) error
	QueueDrop(ctx context.Context, id string) error
}

var _ Queue = (*smtp.Server)(nil)

// live is what a running serve adds to the store for some commands.
type live struct {
	queue Queue // nil: no SMTP frontend, or not wired
}

// stagingPrefix starts the names of backup snapshots made inside the data
// dir (OpBackup without Path, OpVerify).
const stagingPrefix = ".backup-"

func isSystemOp(op string) bool {
	switch op {
	case OpDNSRecords, OpQueueList, OpQueueRetry, OpQueueDrop, OpBackup, OpVerify, OpPing:
		return true
	}
	return false
}

func executeSystem(ctx context.Context, dir *store.Directory, req Request, l *live) Response {
	var resp Response
	var err error
	switch req.Op {
	case OpPing:
	case OpDNSRecords:
		resp.Records, err = dnsRecords(ctx, dir, req.Hostname)
	case OpQueueList:
		resp.Queue, err = queueList(ctx, dir)
	case OpQueueRetry, OpQueueDrop:
		id := strings.TrimSpace(req.ID)
		if id == "" {
			return Response{Error: "no queue id given (see kreide queue list)"}
		}
		err = queueAct(ctx, dir, l, req.Op, id)
		resp.Woken = err == nil && req.Op == OpQueueRetry && l != nil && l.queue != nil
		if errors.Is(err, store.ErrNotFound) {
			return Response{Error: fmt.Sprintf("there is no queued message %s (see kreide queue list)", id)}
		}
	case OpBackup:
		resp.Path, err = backup(ctx, dir, req.Path)
	case OpVerify:
		resp.Problems, err = verifySnapshot(ctx, dir)
		if err == nil && len(resp.Problems) > 0 {
			resp.Error = fmt.Sprintf("the data dir has %d problem(s)", len(resp.Problems))
		}
	}
	if err != nil {
		return Response{Error: describeSystem(err)}
	}
	return resp
}

func dnsRecords(ctx context.Context, dir *store.Directory, hostname string) ([]DNSRecord, error) {
	if strings.TrimSpace(hostname) == "" {
		return nil, errors.New("no hostname given: set hostname in the config file")
	}
	recs, err := smtp.DNSRecords(ctx, dir, hostname)
	if err != nil {
		return nil, err
	}
	out := make([]DNSRecord, len(recs))
	for i, r := range recs {
		out[i] = DNSRecord{Name: r.Name, Type: r.Type, Value: r.Value, Note: r.Note}
	}
	return out, nil
}

func queueList(ctx context.Context, dir *store.Directory) ([]QueueItem, error) {
	items, err := smtp.QueueList(ctx, dir)
	if err != nil {
		return nil, err
	}
	out := make([]QueueItem, 0, len(items))
	for _, it := range items {
		q := QueueItem{ID: it.ID, From: it.From, Size: it.Size, Created: it.Created,
			NextAttempt: it.NextAttempt, LastAttempt: it.LastAttempt, Attempts: it.Attempts}
		for _, r := range it.Recipients {
			q.Recipients = append(q.Recipients, QueueRecipient{Addr: r.Addr, State: string(r.State), LastError: r.LastError})
		}
		out = append(out, q)
	}
	return out, nil
}

// queueAct retries or drops a queued message: through the running queue
// when there is one, so a retry happens now, otherwise in the store (a
// queue started later, or one that polls, picks the change up).
func queueAct(ctx context.Context, dir *store.Directory, l *live, op, id string) error {
	if l != nil && l.queue != nil {
		if op == OpQueueRetry {
			return l.queue.QueueRetry(ctx, id)
		}
		return l.queue.QueueDrop(ctx, id)
	}
	if op == OpQueueRetry {
		return smtp.QueueRetry(ctx, dir, id)
	}
	return smtp.QueueDrop(ctx, dir, id)
}

// backup writes a snapshot to path, or with path "" to a new staging
// directory in the data dir, whose name it returns.
func backup(ctx context.Context, dir *store.Directory, path string) (string, error) {
	if path != "" {
		if !filepath.IsAbs(path) {
			return "", fmt.Errorf("backup directory %q is not an absolute path", path)
		}
		return "", dir.Backup(ctx, path)
	}
	staging, err := os.MkdirTemp(dir.Dir(), stagingPrefix)
	if err != nil {
		return "", err
	}
	if err := dir.Backup(ctx, staging); err != nil {
		os.RemoveAll(staging)
		return "", err
	}
	return filepath.Base(staging), nil
}

// verifySnapshot checks a fresh snapshot of dir: store.Verify cannot run on
// a data dir that a process has open.
func verifySnapshot(ctx context.Context, dir *store.Directory) ([]string, error) {
	name, err := backup(ctx, dir, "")
	if err != nil {
		return nil, fmt.Errorf("taking a snapshot to check: %w", err)
	}
	staging := filepath.Join(dir.Dir(), name)
	defer os.RemoveAll(staging)
	return Problems(store.Verify(ctx, staging)), nil
}

// Problems splits what store.Verify returns into one line per problem.
func Problems(err error) []string {
	if err == nil {
		return nil
	}
	var lines []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		for _, l := range strings.Split(err.Error(), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
	}
	walk(err)
	return lines
}

// sweepStaging removes snapshots left in the data dir by backups that died
// more than a day ago (a recent one may still be being copied away).
func sweepStaging(dataDir string, now time.Time) {
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), stagingPrefix) {
			continue
		}
		if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > 24*time.Hour {
			os.RemoveAll(filepath.Join(dataDir, e.Name()))
		}
	}
}

// describeSystem turns an error of a system command into one line.
func describeSystem(err error) string {
	switch {
	case errors.Is(err, store.ErrExists):
		return strings.TrimPrefix(err.Error(), "store: already exists: ") + ": a backup goes into a new or empty directory"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "interrupted: " + err.Error()
	}
	return strings.ReplaceAll(strings.TrimPrefix(err.Error(), "store: "), "\n", "; ")
}
