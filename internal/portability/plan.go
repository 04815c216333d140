package portability

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Plan is what an import will do: the items found under a path, in order,
// with where each one's bytes are. Make one with Scan.
type Plan struct {
	// What describes what was found ("a Maildir with 3 folders").
	What string
	// Notes are things the admin should know that are not items (a
	// symbolic link not followed).
	Notes []string

	root    string
	entries []*entry
	items   int64
	bytes   int64

	mu    sync.Mutex
	files map[string]*os.File
}

// piece is part of an item's content: literal bytes, or a span of a file.
type piece struct {
	data []byte
	file string
	off  int64
	n    int64 // -1: to the end of the file
}

// entry is one item of a plan.
type entry struct {
	item    Item
	pieces  []piece
	unquote bool  // mboxrd: ">From " loses one '>'
	err     error // damaged at scan time: reported, not imported
}

func (p *Plan) add(e *entry) {
	p.entries = append(p.entries, e)
	p.items++
	p.bytes += e.item.Size
}

// addBad records an item that is damaged: it is reported when the import
// reaches it.
func (p *Plan) addBad(it Item, err error) {
	p.add(&entry{item: it, err: err})
}

// Items and Bytes are the totals of the plan.
func (p *Plan) Items() int64 { return p.items }
func (p *Plan) Bytes() int64 { return p.bytes }

// Counts returns how many items of each kind the plan has.
func (p *Plan) Counts() map[Kind]int {
	out := make(map[Kind]int)
	for _, e := range p.entries {
		out[e.item.Kind]++
	}
	return out
}

func (p *Plan) file(name string) (*os.File, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f := p.files[name]; f != nil {
		return f, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	if p.files == nil {
		p.files = make(map[string]*os.File)
	}
	// Many items of one file (an mbox) share its handle; files with one
	// item each (a Maildir) are closed after it.
	p.files[name] = f
	return f, nil
}

func (p *Plan) release(name string, shared bool) {
	if shared {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if f := p.files[name]; f != nil {
		f.Close()
		delete(p.files, name)
	}
}

// Close closes the files the plan has open.
func (p *Plan) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, f := range p.files {
		f.Close()
		delete(p.files, name)
	}
	return nil
}

// open returns a reader of e's content.
func (p *Plan) open(e *entry) (io.Reader, func(), error) {
	var rs []io.Reader
	var used []string
	shared := len(e.pieces) > 1 || e.unquote
	for _, pc := range e.pieces {
		if pc.file == "" {
			rs = append(rs, bytes.NewReader(pc.data))
			continue
		}
		f, err := p.file(pc.file)
		if err != nil {
			for _, u := range used {
				p.release(u, shared)
			}
			return nil, nil, err
		}
		used = append(used, pc.file)
		n := pc.n
		if n < 0 {
			n = 1<<63 - 1 - pc.off
		}
		rs = append(rs, io.NewSectionReader(f, pc.off, n))
	}
	var r io.Reader = io.MultiReader(rs...)
	if e.unquote {
		r = newUnquoteReader(r)
	}
	return r, func() {
		for _, u := range used {
			p.release(u, shared)
		}
	}, nil
}

// Import hands every item to sink in order and calls report with each
// outcome (from any goroutine, one call at a time). Damaged items are
// reported and skipped; it returns early only on a fatal error
// (see Fatal) or when ctx ends.
func (p *Plan) Import(ctx context.Context, sink Sink, report func(Result)) error {
	var mu sync.Mutex
	rep := func(r Result) {
		mu.Lock()
		defer mu.Unlock()
		report(r)
	}
	var err error
	for _, e := range p.entries {
		if err = ctx.Err(); err != nil {
			break
		}
		if e.err != nil {
			rep(Result{Item: &e.item, Err: e.err})
			continue
		}
		it := &e.item
		r, done, oerr := p.open(e)
		if oerr != nil {
			rep(Result{Item: it, Err: fmt.Errorf("reading %s: %w", it.Source, unwrapPath(oerr))})
			continue
		}
		err = sink.Put(ctx, it, r, func(err error) { rep(Result{Item: it, Err: err}) })
		done()
		if err != nil {
			break
		}
	}
	if cerr := sink.Close(); err == nil {
		err = cerr
	}
	return err
}

// unwrapPath drops the path from an *os.PathError: the caller names it.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
