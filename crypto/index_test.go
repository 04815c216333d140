package crypto

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"testing"
)

func TestBlind(t *testing.T) {
	key := testKey(20)
	ref := func(k Key, domain string, data []byte) []byte {
		m := hmac.New(sha256.New, k[:])
		m.Write(append(append([]byte(domain), 0), data...))
		return m.Sum(nil)[:16]
	}
	tests := []struct {
		domain string
		data   []byte
	}{
		{"mailbox", []byte("INBOX")},
		{"message-id", []byte("<abc@example.org>")},
		{"path", nil},
		{"", []byte("x")},
	}
	for _, tc := range tests {
		got := Blind(key, tc.domain, tc.data)
		if len(got) != BlindSize || !bytes.Equal(got, ref(key, tc.domain, tc.data)) {
			t.Errorf("Blind(%q, %q) = %x, want HMAC-SHA256(domain||0||data)[:16]", tc.domain, tc.data, got)
		}
		if !bytes.Equal(got, Blind(key, tc.domain, tc.data)) {
			t.Errorf("Blind(%q, %q) is not deterministic", tc.domain, tc.data)
		}
	}
	distinct := [][]byte{
		Blind(key, "mailbox", []byte("INBOX")),
		Blind(key, "mailbox", []byte("Inbox")),
		Blind(key, "path", []byte("INBOX")),
		Blind(key, "mailboxI", []byte("NBOX")),
		Blind(testKey(21), "mailbox", []byte("INBOX")),
	}
	for i := range distinct {
		for j := i + 1; j < len(distinct); j++ {
			if bytes.Equal(distinct[i], distinct[j]) {
				t.Errorf("blind values %d and %d collide", i, j)
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Blind accepted a domain containing NUL")
		}
	}()
	Blind(key, "a\x00b", nil)
}
