package smtp

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// FuzzReadHeader: any input is either refused with an SMTP error or parsed
// into fields that reproduce the input's header block byte for byte.
func FuzzReadHeader(f *testing.F) {
	for _, s := range []string{
		"From: a@b.test\r\nSubject: x\r\n\r\nbody",
		"From: a@b.test\nSubject: x\n y\n\nbody\n",
		" leading\r\n\r\n",
		"NoColon\r\n\r\n",
		"From: \"x, y\" <a@b.test>, c@d.test\r\n",
		"",
		"\r\n",
		"A:" + strings.Repeat("x", 40000) + "\r\n\r\n",
		"From: =?utf-8?b?w7w=?= <ü@b.test>\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		h, err := readHeader(bufio.NewReaderSize(strings.NewReader(in), 32<<10))
		if err != nil {
			return
		}
		b := h.bytes()
		if !bytes.HasPrefix([]byte(in), b) {
			t.Fatalf("header %q is not a prefix of the input", b)
		}
		for _, f := range h.fields {
			f.value()
		}
		h.fromAddresses()
		h.looping()
	})
}

// FuzzLoginServer: the LOGIN mechanism never panics and authenticates only
// after a user name and a password.
func FuzzLoginServer(f *testing.F) {
	f.Add([]byte("user"), []byte("pass"), true)
	f.Add([]byte(""), []byte(""), false)
	f.Fuzz(func(t *testing.T, a, b []byte, initial bool) {
		calls := 0
		l := &loginServer{auth: func(u, p string) error {
			calls++
			if u != string(a) || p != string(b) {
				t.Fatalf("auth(%q, %q)", u, p)
			}
			return nil
		}}
		var resp []byte
		if initial {
			resp = a
		}
		_, done, err := l.Next(resp)
		if !initial {
			_, done, err = l.Next(a)
		}
		if done || err != nil {
			t.Fatal("done before the password")
		}
		if _, done, err = l.Next(b); !done || err != nil || calls != 1 {
			t.Fatalf("done=%v err=%v calls=%d", done, err, calls)
		}
		if _, _, err := l.Next(nil); err == nil {
			t.Fatal("accepted more steps")
		}
	})
}
