package imap

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// frontConn is the connection as imapserver sees it. It sits above TLS and
// does what imapserver (go-imap v2.0.0-beta.8) cannot do itself:
//
//   - STARTTLS: frontConn upgrades the connection and drops whatever the
//     client sent behind the command (a command injected in clear must not
//     run inside TLS). imapserver therefore never knows whether a
//     connection is secure, so frontConn also rewrites the capability lists
//     (STARTTLS, LOGINDISABLED, AUTH=) and refuses LOGIN and AUTHENTICATE
//     without TLS; session.Login checks again.
//   - ID (RFC 2971), which imapserver answers with BAD, or BYE before login.
//   - literal limits: an APPEND literal over APPENDLIMIT, or any other
//     literal over 4 KiB, is refused before imapserver sees the command.
//     imapserver would refuse it too, but then parse the bytes of a
//     non-synchronizing literal as commands, or wait for the rest of a
//     synchronizing one that the client will never send.
//   - output batching: imapserver flushes after every response line, which
//     over TLS is a record and a system call each. frontConn collects the
//     lines of a command and writes them when it completes (tagged response
//     or continuation request), when imapserver waits for input, in IDLE,
//     or when 32 KiB have piled up.
//
// To find command boundaries it follows literals in both directions; the
// bytes of a literal pass through untouched. Commands are only intercepted
// when imapserver waits for the next command: everything the client
// pipelined before them has been answered, so responses keep their order.
type frontConn struct {
	srv        *Server
	tc         *trackedConn // the TCP connection under TLS (deadlines, login state)
	allowPlain bool         // LOGIN without TLS is allowed (loopback)
	tlsConf    *tls.Config  // for STARTTLS; nil: not offered

	mu    sync.Mutex // guards inner, which STARTTLS replaces
	inner net.Conn
	tls   atomic.Bool
	idle  atomic.Bool // the session is in IDLE: every response goes out at once

	// Input side: only Read uses these; imapserver never reads concurrently.
	in        []byte // read from the client, not yet passed on or handled
	approved  int    // bytes at the start of in that may be passed on (or dropped)
	dropping  bool   // approved bytes belong to a refused command: drop them
	litLeft   int64  // literal bytes still to pass (or drop)
	cmdStart  bool   // the next segment starts a command
	segIndex  int    // segments of the current command so far (a literal ends one)
	cmdName   string // current command, upper case ("UID FETCH")
	cmdTag    string
	appendLit bool // the current APPEND's message literal has been seen
	dropEnd   bool // the refused command ends with the approved bytes
	closing   bool // a BYE was sent: the next read fails

	// Output side, under wmu.
	wmu      sync.Mutex
	out      *[]byte   // pending output (pooled; nil when empty)
	outLit   int64     // literal bytes still to write
	outHold  []byte    // the start of a line that may be a capability list
	outMid   bool      // inside a line that is passed on as it comes
	outTail  []byte    // the last bytes of that line (for a literal at its end)
	outFlush bool      // a completed command or continuation: write now
	dlSet    time.Time // when the write deadline was last moved
}

const (
	maxSegment      = 64 << 10 // longest command line between literals
	maxPlainLiteral = 4096     // imapserver's limit outside APPEND
	outFlushAt      = 32 << 10
	writeTimeout    = time.Minute // for each write to the client to progress
	maxCapLine      = 2048
)

var outPool = sync.Pool{New: func() any { b := make([]byte, 0, outFlushAt+4096); return &b }}

var errConnClosing = errors.New("imap: connection closing")

func newFrontConn(s *Server, tc *trackedConn, inner net.Conn, isTLS, allowPlain bool) *frontConn {
	f := &frontConn{srv: s, tc: tc, inner: inner, allowPlain: allowPlain, tlsConf: s.o.TLS, cmdStart: true}
	f.tls.Store(isTLS)
	return f
}

func (f *frontConn) conn() net.Conn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inner
}

// canAuth reports whether LOGIN and AUTHENTICATE may be used now.
func (f *frontConn) canAuth() bool { return f.tls.Load() || f.allowPlain }

func (f *frontConn) canStartTLS() bool {
	return f.tlsConf != nil && !f.tls.Load() && !f.tc.authed.Load()
}

// ---- input ----

// Read passes the client's bytes to imapserver, handling the commands
// imapserver must not see.
func (f *frontConn) Read(p []byte) (int, error) {
	f.flushPending()
	for {
		if f.closing {
			return 0, errConnClosing
		}
		if f.approved > 0 {
			if f.dropping {
				f.consume(f.approved)
				if f.dropEnd {
					f.dropping, f.dropEnd = false, false
				}
				continue
			}
			n := copy(p, f.in[:f.approved])
			f.consume(n)
			return n, nil
		}
		if len(f.in) == 0 {
			if f.dropping && f.litLeft > 0 {
				// A refused literal: read and drop it.
				n, err := f.conn().Read(p[:min(int64(len(p)), f.litLeft)])
				if err != nil && n == 0 {
					return 0, err
				}
				f.scan(p[:n])
				continue
			}
			if !f.dropping {
				// The common case: read into imapserver's buffer and keep
				// only what cannot be passed on yet.
				n, err := f.conn().Read(p)
				if n == 0 {
					return 0, err
				}
				fwd, _ := f.scan(p[:n])
				if fwd < n {
					f.in = append(f.in, p[fwd:n]...)
				}
				if fwd > 0 {
					return fwd, nil
				}
				continue
			}
		}
		fwd, ev := f.scan(f.in)
		f.approved = fwd
		if fwd > 0 {
			continue
		}
		switch ev {
		case evNone, evMore:
			if len(f.in) >= maxSegment {
				f.bye("Command line too long")
				continue
			}
			if err := f.fill(); err != nil {
				return 0, err
			}
		case evCommand:
			f.intercept()
		case evTooBig:
			f.refuseLiteral()
		}
	}
}

// fill reads more of the client's input into f.in.
func (f *frontConn) fill() error {
	if cap(f.in)-len(f.in) < 1024 {
		f.in = append(make([]byte, 0, max(2*cap(f.in), 4096)), f.in...)
	}
	n, err := f.conn().Read(f.in[len(f.in):cap(f.in)])
	f.in = f.in[:len(f.in)+n]
	if n > 0 {
		return nil
	}
	return err
}

func (f *frontConn) consume(n int) {
	f.in = f.in[n:]
	f.approved -= n
	if len(f.in) == 0 {
		f.in = nil // an idle connection keeps no buffer
	}
}

type scanEvent int

const (
	evNone    scanEvent = iota
	evMore              // an incomplete line: read more
	evCommand           // a command frontConn answers itself starts here
	evTooBig            // the line here ends with a literal over its limit
)

// scan walks buf from the current state and returns how many bytes of it
// may be passed on (or dropped), advancing the state over them only.
func (f *frontConn) scan(buf []byte) (int, scanEvent) {
	i := 0
	for i < len(buf) {
		if f.litLeft > 0 {
			k := int(min(int64(len(buf)-i), f.litLeft))
			i += k
			f.litLeft -= int64(k)
			if f.litLeft == 0 {
				f.segIndex++
			}
			continue
		}
		nl := bytes.IndexByte(buf[i:], '\n')
		if nl < 0 {
			return i, evMore
		}
		seg := buf[i : i+nl+1]
		if f.cmdStart && !f.dropping {
			tag, name := commandOf(seg)
			f.cmdTag, f.cmdName, f.segIndex, f.appendLit = tag, name, 0, false
			if f.interceptable(name) {
				return i, evCommand
			}
		}
		size, sync, hasLit := literalAtEnd(seg)
		if f.dropping {
			i += len(seg)
			if hasLit && !sync {
				f.litLeft = size
				f.cmdStart = false
				continue
			}
			// The command ends here (a synchronizing literal the client
			// waits to be invited for ends it too).
			f.cmdStart, f.dropEnd = true, true
			return i, evNone
		}
		var limit int64
		var message bool
		if hasLit {
			if limit, message = f.literalLimit(seg); size > limit {
				return i, evTooBig
			}
		}
		i += len(seg)
		if hasLit {
			f.appendLit = f.appendLit || message
			f.litLeft = size
			f.cmdStart = false
			if size == 0 {
				f.segIndex++
			}
		} else {
			f.cmdStart = true
		}
	}
	return i, evNone
}

// interceptable reports whether frontConn answers the command itself.
func (f *frontConn) interceptable(name string) bool {
	if f.idle.Load() {
		return false // only DONE is valid; imapserver handles anything else
	}
	switch name {
	case "ID", "STARTTLS":
		return true
	case "LOGIN", "AUTHENTICATE":
		return !f.canAuth() && !f.tc.authed.Load()
	}
	return false
}

// literalLimit is the largest literal allowed at the end of seg, a segment
// of the current command, and whether the literal is an APPEND's message.
func (f *frontConn) literalLimit(seg []byte) (limit int64, message bool) {
	if f.cmdName != "APPEND" || f.appendLit {
		return maxPlainLiteral, false // after the message imapserver refuses anyway
	}
	// In "tag APPEND {n}" the literal is the mailbox name; any later one is
	// the message.
	if f.segIndex == 0 {
		args := bytes.TrimLeft(seg[min(len(f.cmdTag)+1+len("APPEND"), len(seg)):], " ")
		if len(args) > 0 && args[0] == '{' {
			return maxPlainLiteral, false
		}
	}
	if !f.tc.authed.Load() {
		return 0, true // imapserver's limit before login, too
	}
	return int64(f.srv.appendLimit()), true
}

// refuseLiteral answers a command whose literal is over its limit. If the
// command started in an earlier segment, imapserver is already parsing it:
// the connection ends.
func (f *frontConn) refuseLiteral() {
	nl := bytes.IndexByte(f.in, '\n')
	seg := f.in[:nl+1]
	size, sync, _ := literalAtEnd(seg)
	if f.segIndex > 0 {
		f.bye("[TOOBIG] Literal too large")
		return
	}
	limit, _ := f.literalLimit(seg)
	f.reply(f.cmdTag + " NO [TOOBIG] Literals are limited to " + strconv.FormatInt(limit, 10) + " bytes for this command")
	f.consume(len(seg))
	if !sync {
		f.dropping, f.litLeft, f.cmdStart = true, size, false
	} else {
		f.cmdStart = true
	}
}

// intercept answers the command at the start of f.in.
func (f *frontConn) intercept() {
	nl := bytes.IndexByte(f.in, '\n')
	seg := f.in[:nl+1]
	tag, name := f.cmdTag, f.cmdName
	size, sync, hasLit := literalAtEnd(seg)
	args := bytes.TrimRight(seg[min(len(tag)+1+len(name), len(seg)):], "\r\n")
	f.consume(len(seg))
	f.cmdStart = true
	if hasLit {
		// Our commands take no literals (ID's values are short); LOGIN's
		// may, and the client sends them behind our NO unless it waits
		// for an invitation.
		if !sync {
			f.dropping, f.litLeft, f.cmdStart = true, size, false
		}
		if name != "LOGIN" {
			f.reply(tag + " BAD Literals are not supported in " + name)
			return
		}
	}
	switch name {
	case "ID":
		if !validIDArgs(args) {
			f.reply(tag + " BAD Invalid ID arguments")
			return
		}
		f.srv.log.Debug("imap: client ID", "remote", f.tc.ip, "id", string(args))
		f.reply(`* ID ("name" "kreide" "vendor" "kreide")`, tag+" OK ID completed")
	case "LOGIN", "AUTHENTICATE":
		f.reply(tag + " NO [PRIVACYREQUIRED] TLS is required to authenticate: use STARTTLS or port 993")
	case "STARTTLS":
		switch {
		case len(bytes.TrimSpace(args)) > 0:
			f.reply(tag + " BAD STARTTLS takes no arguments")
		case f.tlsConf == nil:
			f.reply(tag + " NO STARTTLS not supported")
		case !f.canStartTLS():
			f.reply(tag + " BAD STARTTLS not available")
		default:
			f.reply(tag + " OK Begin TLS negotiation now")
			// Anything the client sent behind STARTTLS was sent in
			// clear: it must not run as if it came over TLS.
			f.in, f.approved = nil, 0
			f.mu.Lock()
			f.inner = tls.Server(f.inner, f.tlsConf)
			f.mu.Unlock()
			f.tls.Store(true)
		}
	}
}

// bye ends the connection with an untagged BYE.
func (f *frontConn) bye(text string) {
	f.reply("* BYE " + text)
	f.closing = true
	f.in, f.approved = nil, 0
}

// commandOf returns the tag and upper-case name of the command starting
// seg ("UID FETCH" for UID commands); empty if seg is no command.
func commandOf(seg []byte) (tag, name string) {
	sp := bytes.IndexByte(seg, ' ')
	if sp <= 0 {
		return "", ""
	}
	tag = string(seg[:sp])
	rest := seg[sp+1:]
	end := bytes.IndexAny(rest, " \r\n")
	if end < 0 {
		end = len(rest)
	}
	name = string(bytes.ToUpper(rest[:end]))
	if name == "UID" && end < len(rest) && rest[end] == ' ' {
		sub := rest[end+1:]
		e2 := bytes.IndexAny(sub, " \r\n")
		if e2 < 0 {
			e2 = len(sub)
		}
		name += " " + string(bytes.ToUpper(sub[:e2]))
	}
	return tag, name
}

// literalAtEnd finds a literal announced at the end of a line: "{n}",
// "{n+}" (non-synchronizing) or "~{n}" (binary).
func literalAtEnd(line []byte) (size int64, sync, ok bool) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false, false
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false, false
	}
	num := line[open+1 : len(line)-1]
	sync = true
	if n := len(num); n > 0 && num[n-1] == '+' {
		num, sync = num[:n-1], false
	}
	if len(num) == 0 || len(num) > 19 {
		return 0, false, false
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, false, false
		}
	}
	size, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil {
		return 0, false, false
	}
	return size, sync, true
}

// validIDArgs checks ID's argument: NIL or a list of string pairs
// (RFC 2971: at most 30, fields up to 30 bytes, values up to 1024 or NIL).
func validIDArgs(args []byte) bool {
	a := bytes.TrimPrefix(args, []byte(" "))
	if bytes.EqualFold(a, []byte("NIL")) {
		return true
	}
	if len(a) < 2 || a[0] != '(' || a[len(a)-1] != ')' {
		return false
	}
	a = a[1 : len(a)-1]
	n := 0
	for len(a) > 0 {
		field, rest, ok := quoted(a)
		if !ok || len(field) > 30 || len(rest) == 0 || rest[0] != ' ' {
			return false
		}
		rest = rest[1:]
		var value []byte
		if len(rest) >= 3 && bytes.EqualFold(rest[:3], []byte("NIL")) {
			rest = rest[3:]
		} else if value, rest, ok = quoted(rest); !ok || len(value) > 1024 {
			return false
		}
		if n++; n > 30 {
			return false
		}
		if len(rest) > 0 {
			if rest[0] != ' ' || len(rest) == 1 {
				return false
			}
			rest = rest[1:]
		}
		a = rest
	}
	return n > 0
}

// quoted parses a quoted string at the start of b.
func quoted(b []byte) (s, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, nil, false
	}
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return b[1:i], b[i+1:], true
		case '\r', '\n':
			return nil, nil, false
		}
	}
	return nil, nil, false
}

// ---- output ----

// Write takes imapserver's output: it follows line and literal boundaries,
// rewrites capability lists and decides when to send.
func (f *frontConn) Write(p []byte) (int, error) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	n := len(p)
	for len(p) > 0 {
		if f.outLit > 0 {
			k := int(min(int64(len(p)), f.outLit))
			if err := f.emit(p[:k]); err != nil {
				return 0, err
			}
			f.outLit -= int64(k)
			p = p[k:]
			continue
		}
		nl := bytes.IndexByte(p, '\n')
		if f.outMid {
			chunk := p
			if nl >= 0 {
				chunk = p[:nl+1]
			}
			if err := f.emit(chunk); err != nil {
				return 0, err
			}
			f.keepTail(chunk)
			p = p[len(chunk):]
			if nl >= 0 {
				f.outMid = false
				f.lineDone(f.outTail)
				f.outTail = f.outTail[:0]
			}
			continue
		}
		if nl < 0 {
			head := append(f.outHold, p...)
			if len(head) <= maxCapLine && mayBeCapabilityLine(head) {
				f.outHold = head
				p = nil
				continue
			}
			// An ordinary long line: pass it on as it comes.
			f.outHold = f.outHold[:0]
			f.outMid = true
			f.markLineStart(head)
			if err := f.emit(head); err != nil {
				return 0, err
			}
			f.keepTail(head)
			p = nil
			continue
		}
		line := p[:nl+1]
		if len(f.outHold) > 0 {
			line = append(f.outHold, line...)
			f.outHold = f.outHold[:0]
		}
		p = p[nl+1:]
		f.markLineStart(line)
		if isCapabilityLine(line) {
			line = f.rewriteCapabilities(line)
		}
		if err := f.emit(line); err != nil {
			return 0, err
		}
		f.lineDone(line)
	}
	if f.outFlush || f.idle.Load() {
		if err := f.flushLocked(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// markLineStart notes whether a response line must go out at once: a
// tagged status response, a continuation request, or an untagged status
// (greeting, BYE).
func (f *frontConn) markLineStart(line []byte) {
	switch {
	case len(line) > 0 && line[0] == '+':
		f.outFlush = true
	case len(line) > 1 && line[0] == '*':
		rest := line[2:]
		for _, s := range [][]byte{[]byte("OK"), []byte("BYE"), []byte("PREAUTH"), []byte("NO"), []byte("BAD")} {
			if bytes.HasPrefix(rest, s) && (len(rest) == len(s) || rest[len(s)] == ' ' || rest[len(s)] == '\r') {
				f.outFlush = true
			}
		}
	default:
		f.outFlush = true
	}
}

// lineDone looks for a literal announced at the end of a finished line.
func (f *frontConn) lineDone(end []byte) {
	if size, _, ok := literalAtEnd(end); ok {
		f.outLit = size
	}
}

func (f *frontConn) keepTail(b []byte) {
	const n = 24
	f.outTail = append(f.outTail, b[max(0, len(b)-n):]...)
	if len(f.outTail) > n {
		f.outTail = append(f.outTail[:0], f.outTail[len(f.outTail)-n:]...)
	}
}

// emit queues b for the client.
func (f *frontConn) emit(b []byte) error {
	if f.out == nil {
		if len(b) >= outFlushAt {
			return f.writeInner(b)
		}
		f.out = outPool.Get().(*[]byte)
	}
	*f.out = append(*f.out, b...)
	if len(*f.out) >= outFlushAt {
		return f.flushLocked()
	}
	return nil
}

func (f *frontConn) flushLocked() error {
	f.outFlush = false
	if f.out == nil {
		return nil
	}
	buf := f.out
	f.out = nil
	err := f.writeInner(*buf)
	*buf = (*buf)[:0]
	outPool.Put(buf)
	return err
}

// writeInner sends b. Every write has a deadline: a client that stops
// reading must not hold the connection forever. imapserver sets one per
// response line, which costs a timer update each; frontConn ignores those
// and moves its own at most once a second.
func (f *frontConn) writeInner(b []byte) error {
	c := f.conn()
	if now := time.Now(); now.Sub(f.dlSet) > time.Second {
		c.SetWriteDeadline(now.Add(writeTimeout))
		f.dlSet = now
	}
	_, err := c.Write(b)
	return err
}

// flushPending sends what is queued before imapserver waits for input.
func (f *frontConn) flushPending() {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if err := f.flushLocked(); err != nil {
		f.conn().Close()
	}
}

// reply writes lines of frontConn's own, between imapserver's responses.
func (f *frontConn) reply(lines ...string) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	for _, l := range lines {
		if err := f.emit(append([]byte(l), '\r', '\n')); err != nil {
			return
		}
	}
	f.flushLocked()
}

// mayBeCapabilityLine reports whether an incomplete response line could
// still turn out to carry a capability list.
func mayBeCapabilityLine(head []byte) bool {
	if len(head) > 0 && head[0] == '+' {
		return false
	}
	fields := bytes.Fields(head)
	if len(fields) < 2 {
		return len(head) < 64
	}
	second := string(bytes.ToUpper(fields[1]))
	if string(fields[0]) == "*" && strings.HasPrefix("CAPABILITY", second) {
		return true
	}
	for _, status := range []string{"OK", "PREAUTH", "BYE", "NO", "BAD"} {
		if second == status || (len(fields) == 2 && strings.HasPrefix(status, second)) {
			if len(fields) == 2 {
				return true
			}
			third := string(bytes.ToUpper(fields[2]))
			return strings.HasPrefix("[CAPABILITY", third) || strings.HasPrefix(third, "[CAPABILITY")
		}
	}
	return false
}

func isCapabilityLine(line []byte) bool {
	return bytes.HasPrefix(line, []byte("* CAPABILITY ")) || bytes.Contains(line, []byte("[CAPABILITY "))
}

// rewriteCapabilities adjusts a capability list to the connection's
// security, which imapserver does not know, and adds ID.
func (f *frontConn) rewriteCapabilities(line []byte) []byte {
	var start, end int
	if bytes.HasPrefix(line, []byte("* CAPABILITY ")) {
		start = len("* CAPABILITY ")
		end = len(bytes.TrimRight(line, "\r\n"))
	} else {
		start = bytes.Index(line, []byte("[CAPABILITY ")) + len("[CAPABILITY ")
		e := bytes.IndexByte(line[start:], ']')
		if e < 0 {
			return line
		}
		end = start + e
	}
	authed := f.tc.authed.Load()
	var caps [][]byte
	hasID := false
	for _, c := range bytes.Fields(line[start:end]) {
		up := bytes.ToUpper(c)
		switch {
		case bytes.HasPrefix(up, []byte("AUTH=")) && !f.canAuth():
			continue
		case bytes.Equal(up, []byte("STARTTLS")), bytes.Equal(up, []byte("LOGINDISABLED")):
			continue // decided below
		case bytes.Equal(up, []byte("ID")):
			hasID = true
		}
		caps = append(caps, c)
	}
	if f.canStartTLS() {
		caps = append(caps, []byte("STARTTLS"))
	}
	if !f.canAuth() && !authed {
		caps = append(caps, []byte("LOGINDISABLED"))
	}
	if !hasID {
		caps = append(caps, []byte("ID"))
	}
	out := make([]byte, 0, len(line)+32)
	out = append(out, line[:start]...)
	out = append(out, bytes.Join(caps, []byte(" "))...)
	return append(out, line[end:]...)
}

// ---- net.Conn ----

// Close sends what is queued (unless a write is stuck) and closes.
func (f *frontConn) Close() error {
	if f.wmu.TryLock() {
		if f.out != nil {
			f.conn().SetWriteDeadline(time.Now().Add(2 * time.Second))
			f.dlSet = time.Now()
			f.flushLocked()
		}
		f.wmu.Unlock()
	}
	return f.conn().Close()
}

func (f *frontConn) LocalAddr() net.Addr  { return f.tc.LocalAddr() }
func (f *frontConn) RemoteAddr() net.Addr { return f.tc.RemoteAddr() }

// SetDeadline and SetWriteDeadline leave writes to writeInner's deadline.
func (f *frontConn) SetDeadline(t time.Time) error      { return f.conn().SetReadDeadline(t) }
func (f *frontConn) SetReadDeadline(t time.Time) error  { return f.conn().SetReadDeadline(t) }
func (f *frontConn) SetWriteDeadline(t time.Time) error { return nil }
