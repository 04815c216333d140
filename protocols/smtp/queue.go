package smtp

import (
	"bufio"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"kreide/store"
)

// The outbound queue runner. Messages live in store.Queue (durable and
// encrypted under the server key); this loop picks those that are due,
// delivers each destination domain in its own goroutine (bounded overall by
// MaxDeliveries and per domain by MaxPerDomain), and records the outcome:
// delivered and permanently failed recipients are done, the others are
// retried with exponential backoff (RetryBase doubling up to RetryMax) until
// QueueLifetime has passed. Failures produce one DSN per attempt to the
// sender. A message is removed once no recipient is pending.

// outcome is the result of one delivery attempt to one recipient.
type outcome struct {
	kind int // sent, tempFail or permFail
	code int // SMTP reply code, 0 if none (DNS, network)
	msg  string
	mta  string
}

const (
	sent = iota
	tempFail
	permFail
)

type queueRunner struct {
	s      *Server
	q      *store.Queue
	wakeCh chan struct{}
	wg     sync.WaitGroup
	global chan struct{}

	mu      sync.Mutex
	active  map[string]bool          // message ids being delivered
	domains map[string]chan struct{} // per-destination slots
}

func newQueueRunner(s *Server) *queueRunner {
	return &queueRunner{
		s:       s,
		q:       s.o.Dir.Queue(),
		wakeCh:  make(chan struct{}, 1),
		global:  make(chan struct{}, s.o.MaxDeliveries),
		active:  map[string]bool{},
		domains: map[string]chan struct{}{},
	}
}

// start removes spool files left by a crash, then runs the loop. It is
// called before any listener serves, so no spool is being written.
func (qr *queueRunner) start() {
	if err := qr.q.Sweep(qr.s.ctx); err != nil {
		qr.s.log.Error("queue sweep", "err", err)
	}
	qr.wg.Add(1)
	go qr.loop()
}

// wake makes the loop look at the queue now (a message was added or retried).
func (qr *queueRunner) wake() {
	select {
	case qr.wakeCh <- struct{}{}:
	default:
	}
}

func (qr *queueRunner) wait() { qr.wg.Wait() }

func (qr *queueRunner) loop() {
	defer qr.wg.Done()
	ctx := qr.s.ctx
	for {
		next := qr.scan(ctx)
		d := time.Until(next)
		if d > time.Minute {
			d = time.Minute // also notices changes made by other tools
		}
		t := time.NewTimer(max(d, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-qr.wakeCh:
			t.Stop()
		case <-t.C:
		}
	}
}

// scan starts the due messages and returns when the next one is due.
func (qr *queueRunner) scan(ctx context.Context) time.Time {
	next := time.Now().Add(time.Hour)
	msgs, err := qr.q.List(ctx)
	if err != nil {
		qr.s.log.Error("queue list", "err", err)
		return time.Now().Add(time.Minute)
	}
	now := time.Now()
	qr.mu.Lock()
	defer qr.mu.Unlock()
	for _, m := range msgs {
		if qr.active[m.ID] {
			continue
		}
		if m.NextAttempt.After(now) {
			if m.NextAttempt.Before(next) {
				next = m.NextAttempt
			}
			continue
		}
		qr.active[m.ID] = true
		qr.wg.Add(1)
		go func(m store.QueueMessage) {
			defer func() {
				qr.mu.Lock()
				delete(qr.active, m.ID)
				qr.mu.Unlock()
				qr.wg.Done()
				qr.wake()
			}()
			qr.attempt(ctx, &m)
		}(m)
	}
	return next
}

// slot takes a delivery slot for domain; release it with the returned func.
func (qr *queueRunner) slot(ctx context.Context, domain string) (func(), error) {
	qr.mu.Lock()
	sem, ok := qr.domains[domain]
	if !ok {
		sem = make(chan struct{}, qr.s.o.MaxPerDomain)
		qr.domains[domain] = sem
	}
	qr.mu.Unlock()
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case qr.global <- struct{}{}:
	case <-ctx.Done():
		<-sem
		return nil, ctx.Err()
	}
	return func() { <-qr.global; <-sem }, nil
}

// attempt tries every pending recipient of m once and records the outcome.
func (qr *queueRunner) attempt(ctx context.Context, m *store.QueueMessage) {
	byDomain := map[string][]string{}
	for _, a := range m.Pending() {
		d := domainOf(a)
		byDomain[d] = append(byDomain[d], a)
	}
	var mu sync.Mutex
	results := map[string]outcome{}
	var wg sync.WaitGroup
	for domain, rcpts := range byDomain {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := qr.slot(ctx, domain)
			if err != nil {
				return
			}
			res := qr.deliverDomain(ctx, m, domain, rcpts)
			release()
			mu.Lock()
			for a, o := range res {
				results[a] = o
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // shutting down: the next start retries
	}
	qr.record(ctx, m, results)
}

func (qr *queueRunner) record(ctx context.Context, m *store.QueueMessage, results map[string]outcome) {
	now := time.Now().UTC()
	m.Attempts++
	m.LastAttempt = now
	var failed []failure
	expired := now.Sub(m.Created) >= qr.s.o.QueueLifetime
	for i := range m.Recipients {
		r := &m.Recipients[i]
		if r.State != store.RcptPending {
			continue
		}
		if o, ok := results[r.Addr]; ok {
			r.LastError, r.Code, r.RemoteMTA = oneLine(o.msg), o.code, o.mta
			switch o.kind {
			case sent:
				r.State = store.RcptSent
				qr.s.log.Info("delivered remotely", "queue_id", m.ID, "mta", o.mta)
				continue
			case permFail:
				r.State = store.RcptFailed
				failed = append(failed, failureOf(r, ""))
				qr.s.log.Info("remote delivery failed", "queue_id", m.ID, "mta", o.mta, "code", o.code)
				continue
			}
		}
		if expired {
			r.State = store.RcptFailed
			failed = append(failed, failureOf(r, "4.4.7"))
			qr.s.log.Info("queue lifetime expired", "queue_id", m.ID)
		}
	}
	if len(failed) > 0 && m.From != "" {
		qr.s.bounce(ctx, bounceInfo{Sender: m.From, SenderAccount: m.Account, Failed: failed,
			Headers: qr.originalHeader(ctx, m), Arrival: m.Created, LastAttempt: now})
	}
	if len(m.Pending()) == 0 {
		if err := qr.q.Remove(ctx, m.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			qr.s.log.Error("queue remove", "queue_id", m.ID, "err", err)
		}
		return
	}
	m.NextAttempt = now.Add(qr.backoff(m.Attempts))
	if err := qr.q.Update(ctx, m); err != nil && !errors.Is(err, store.ErrNotFound) {
		qr.s.log.Error("queue update", "queue_id", m.ID, "err", err)
	}
}

// failureOf describes a failed recipient for the DSN. status overrides the
// code taken from the last reply (expiry: 4.4.7 unless the reply had one).
func failureOf(r *store.QueueRecipient, status string) failure {
	f := failure{Addr: r.Addr, RemoteMTA: r.RemoteMTA}
	if r.Code > 0 {
		f.Status = statusOf(r.Code, r.LastError)
		f.Diagnostic = "smtp; " + r.LastError
	} else {
		f.Status = "4.4.1"
		if strings.HasPrefix(r.LastError, "5.") {
			f.Status = strings.Fields(r.LastError)[0]
		}
		f.Diagnostic = "x-local; " + r.LastError
	}
	if status != "" && !strings.HasPrefix(f.Status, "5.") {
		f.Status = status
	}
	return f
}

// backoff is the delay after the n-th attempt, with ±10% jitter so retries
// of many messages do not arrive together.
func (qr *queueRunner) backoff(n int) time.Duration {
	d := qr.s.o.RetryBase
	for i := 1; i < n && d < qr.s.o.RetryMax; i++ {
		d *= 2
	}
	d = min(d, qr.s.o.RetryMax)
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

// originalHeader reads the queued message's header block for the DSN.
func (qr *queueRunner) originalHeader(ctx context.Context, m *store.QueueMessage) []byte {
	r, err := qr.q.Open(ctx, m)
	if err != nil {
		return nil
	}
	defer r.Close()
	h, err := readHeader(bufio.NewReader(r))
	if err != nil {
		return nil
	}
	return h.bytes()
}
