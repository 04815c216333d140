package portability

import (
	"bytes"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"kreide/store"
)

// fromLineDate parses the date at the end of an mbox From_ line
// ("From anna@example.org Thu Jan  1 00:00:00 2004"); ok is false when the
// line is not a From_ line.
func fromLineDate(line []byte) (time.Time, bool) {
	if !bytes.HasPrefix(line, []byte("From ")) {
		return time.Time{}, false
	}
	f := strings.Fields(string(line[5:]))
	// The sender, then the date: "Mon Jan _2 15:04:05 2006", sometimes with
	// a zone before or after the year.
	for start := 1; start < len(f) && start <= 3; start++ {
		rest := strings.Join(f[start:], " ")
		for _, layout := range []string{
			"Mon Jan 2 15:04:05 2006",
			"Mon Jan 2 15:04:05 2006 -0700",
			"Mon Jan 2 15:04:05 -0700 2006",
			"Mon Jan 2 15:04:05 MST 2006",
			"Mon Jan 2 15:04 2006",
			"Mon, 2 Jan 2006 15:04:05 -0700",
		} {
			if t, err := time.Parse(layout, rest); err == nil {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

// mboxMsg is what the scan learns of one message of an mbox.
type mboxMsg struct {
	start, end int64 // the message after its From_ line
	line       int   // line number of the From_ line
	date       time.Time
	flags      []string
	inHeader   bool
	headerDate time.Time
}

// scanMbox adds every message of the mbox file path to mailbox.
func (p *Plan) scanMbox(path, rel, mailbox string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := newLineScanner(f)
	var cur *mboxMsg
	var prevBlank, prevBlankLen = true, int64(0)
	count := 0
	finish := func(end int64) {
		if cur == nil {
			return
		}
		cur.end = end
		count++
		date := cur.date
		if date.IsZero() {
			date = cur.headerDate
		}
		it := Item{Kind: KindMessage, Source: fmt.Sprintf("%s: message %d (line %d)", rel, count, cur.line),
			Size: cur.end - cur.start, Mailbox: mailbox, Flags: cur.flags, Date: date}
		if cur.end <= cur.start {
			p.addBad(it, fmt.Errorf("empty message"))
		} else {
			p.add(&entry{item: it, pieces: []piece{{file: path, off: cur.start, n: cur.end - cur.start}}, unquote: true})
		}
		cur = nil
	}
	for s.next() {
		line := s.line()
		if prevBlank {
			if date, ok := fromLineDate(line); ok || (s.start == 0 && bytes.HasPrefix(line, []byte("From "))) {
				// The blank line before a From_ line belongs to the mbox,
				// not to the message.
				finish(s.start - prevBlankLen)
				cur = &mboxMsg{start: s.off, line: s.num, date: date, inHeader: true}
				prevBlank, prevBlankLen = false, 0
				continue
			}
		}
		if s.start == 0 {
			return 0, fmt.Errorf("%s is not an mbox file (it does not start with a From_ line)", rel)
		}
		if cur != nil && cur.inHeader {
			if len(line) == 0 {
				cur.inHeader = false
			} else {
				cur.headerFlags(line)
			}
		}
		prevBlank = s.blank()
		prevBlankLen = 0
		if prevBlank {
			prevBlankLen = s.n
		}
	}
	if s.err != nil {
		return count, fmt.Errorf("reading %s: %w", rel, s.err)
	}
	finish(s.off - prevBlankLen)
	return count, nil
}

// headerFlags reads flags from the status headers mail programs write into
// mbox files: Status and X-Status (mutt, Pine, Dovecot), X-Mozilla-Status
// (Thunderbird). It also remembers the Date header.
func (m *mboxMsg) headerFlags(line []byte) {
	name, value, ok := bytes.Cut(line, []byte(":"))
	if !ok {
		return
	}
	v := strings.TrimSpace(string(value))
	add := func(flag string) { m.flags = append(m.flags, flag) }
	switch strings.ToLower(string(name)) {
	case "status":
		if strings.Contains(v, "R") {
			add(store.FlagSeen)
		}
	case "x-status":
		for _, c := range v {
			switch c {
			case 'A':
				add(store.FlagAnswered)
			case 'F':
				add(store.FlagFlagged)
			case 'T':
				add(store.FlagDraft)
			case 'D':
				add(store.FlagDeleted)
			}
		}
	case "x-mozilla-status":
		n, err := strconv.ParseUint(v, 16, 16)
		if err != nil {
			return
		}
		for _, b := range []struct {
			bit  uint64
			flag string
		}{{0x0001, store.FlagSeen}, {0x0002, store.FlagAnswered}, {0x0004, store.FlagFlagged}, {0x0008, store.FlagDeleted}, {0x1000, "$Forwarded"}} {
			if n&b.bit != 0 {
				add(b.flag)
			}
		}
	case "date":
		if t, err := mail.ParseDate(v); err == nil {
			m.headerDate = t
		}
	}
}

// looksLikeMbox reports whether the file at path starts with a From_ line.
func looksLikeMbox(head []byte) bool {
	line, _, _ := bytes.Cut(head, []byte("\n"))
	_, ok := fromLineDate(bytes.TrimRight(line, "\r"))
	return ok || bytes.HasPrefix(head, []byte("From "))
}

// mboxName is the mailbox an mbox file goes into: its name without an
// .mbox extension (Thunderbird's "Inbox" is INBOX).
func mboxName(path string) string {
	name := filepath.Base(path)
	name = strings.TrimSuffix(name, filepath.Ext(name))
	if ext := filepath.Ext(filepath.Base(path)); ext != ".mbox" && ext != ".mbx" {
		name = filepath.Base(path)
	}
	if name == "" {
		return "INBOX"
	}
	return name
}
