package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"kreide/internal/portability"
)

// progressView shows how far an import or export is: a bar redrawn in place
// on a terminal, otherwise a plain line every few seconds (for logs).
type progressView struct {
	w       io.Writer
	tty     bool
	verb    string // "imported", "exported"
	p       portability.Progress
	last    time.Time
	drawn   bool
	printed string // the last plain line
}

func newProgressView(e *env, verb string) *progressView {
	v := &progressView{w: e.stderr, verb: verb}
	if f, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		v.tty = true
	}
	return v
}

// update records p and shows it if it is time to.
func (v *progressView) update(p portability.Progress) {
	v.p = p
	every := 5 * time.Second
	if v.tty {
		every = 100 * time.Millisecond
	}
	if time.Since(v.last) < every {
		return
	}
	v.last = time.Now()
	v.draw()
}

func (v *progressView) draw() {
	if v.tty {
		fmt.Fprintf(v.w, "\r\033[K%s", v.bar())
		v.drawn = true
		return
	}
	if t := v.text(); t != v.printed {
		fmt.Fprintln(v.w, t)
		v.printed = t
	}
}

// println prints a line (a skipped item) above the bar.
func (v *progressView) println(s string) {
	if v.tty && v.drawn {
		fmt.Fprint(v.w, "\r\033[K")
		v.drawn = false
	}
	fmt.Fprintln(v.w, s)
	if v.tty {
		v.draw()
	}
}

// finish shows the final state and leaves the bar's line.
func (v *progressView) finish() {
	if v.p.Done == 0 && !v.drawn {
		return // nothing happened (the account did not unlock)
	}
	if v.tty {
		fmt.Fprintf(v.w, "\r\033[K%s\n", v.bar())
		v.drawn = false
		return
	}
	v.draw()
}

func (v *progressView) text() string {
	p := v.p
	s := fmt.Sprintf("%s %d/%d items, %s/%s", v.verb, p.Done, p.Items, humanBytes(p.DoneBytes), humanBytes(p.Bytes))
	if p.Failed > 0 {
		s += fmt.Sprintf(", %d skipped", p.Failed)
	}
	return s
}

func (v *progressView) bar() string {
	const width = 30
	p := v.p
	frac := 1.0
	switch {
	case p.Bytes > 0:
		frac = float64(p.DoneBytes) / float64(p.Bytes)
	case p.Items > 0:
		frac = float64(p.Done) / float64(p.Items)
	}
	frac = min(max(frac, 0), 1)
	n := int(frac * width)
	return fmt.Sprintf("[%s%s] %3.0f%%  %s", strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100, v.text())
}

// humanBytes shows a size with one decimal: "12.3 MiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
