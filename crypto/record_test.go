package crypto

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	rc := NewRecordCipher(testKey(10), "acct-1")
	tests := []struct {
		name   string
		bucket string
		key    []byte
		value  []byte
	}{
		{"typical", "messages", []byte{0, 0, 0, 1, 0, 0, 0, 42}, testBytes(10, 500)},
		{"empty value", "mailboxes", []byte("k"), []byte{}},
		{"nil key and bucket", "", nil, []byte("v")},
		{"large value", "dav", testBytes(11, 40), testBytes(12, 64*1024)},
		{"nested bucket path", "dav/calendars/home", []byte("x"), []byte("BEGIN:VCALENDAR")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := rc.Seal(tc.bucket, tc.key, tc.value)
			if len(s) != len(tc.value)+RecordOverhead || s[0] != 1 {
				t.Fatalf("sealed length %d, want %d; version %d", len(s), len(tc.value)+RecordOverhead, s[0])
			}
			if len(tc.value) >= 16 && bytes.Contains(s, tc.value[:16]) {
				t.Fatal("plaintext visible in the sealed record")
			}
			got, err := rc.Open(tc.bucket, tc.key, s)
			if err != nil || !bytes.Equal(got, tc.value) || got == nil {
				t.Fatalf("Open = %x, %v", got, err)
			}
			// The result must not alias the input (bbolt values die with their tx).
			for i := range s {
				s[i] = 0
			}
			if !bytes.Equal(got, tc.value) {
				t.Fatal("Open's result aliases the sealed input")
			}
			// Another cipher with the same key and account opens it too.
			s = rc.Seal(tc.bucket, tc.key, tc.value)
			got, err = NewRecordCipher(testKey(10), "acct-1").Open(tc.bucket, tc.key, s)
			if err != nil || !bytes.Equal(got, tc.value) {
				t.Fatalf("fresh cipher: Open = %v", err)
			}
		})
	}
	a, b := rc.Seal("b", []byte("k"), []byte("v")), rc.Seal("b", []byte("k"), []byte("v"))
	if bytes.Equal(a, b) {
		t.Fatal("sealing twice gives the same bytes")
	}
}

func TestRecordSwaps(t *testing.T) {
	key := testKey(11)
	type place struct {
		account, bucket, key string
	}
	origin := place{"alice", "messages", "0001"}
	tests := []struct {
		name   string
		cipher Key
		to     place
	}{
		{"other key", key, place{"alice", "messages", "0002"}},
		{"other bucket", key, place{"alice", "mailboxes", "0001"}},
		{"other account", key, place{"bob", "messages", "0001"}},
		{"bucket/key boundary shifted", key, place{"alice", "messages0", "001"}},
		{"account/bucket boundary shifted", key, place{"alicem", "essages", "0001"}},
		{"empty key", key, place{"alice", "messages", ""}},
		{"all empty", key, place{"", "", ""}},
		{"other record key", testKey(12), origin},
	}
	value := []byte("secret value")
	sealed := NewRecordCipher(key, origin.account).Seal(origin.bucket, []byte(origin.key), value)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewRecordCipher(tc.cipher, tc.to.account).Open(tc.to.bucket, []byte(tc.to.key), sealed)
			mustDecryptErr(t, err, "Open at "+fmt.Sprint(tc.to))
			if got != nil {
				t.Fatal("returned data with the error")
			}
		})
	}
}

func TestRecordTamper(t *testing.T) {
	rc := NewRecordCipher(testKey(13), "acct")
	value := testBytes(13, 100)
	s := rc.Seal("b", []byte("k"), value)
	for i := range s {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			got, err := rc.Open("b", []byte("k"), flipped(s, i, mask))
			mustDecryptErr(t, err, fmt.Sprintf("byte %d ^ %#x", i, mask))
			if got != nil {
				t.Fatalf("byte %d: data returned", i)
			}
		}
	}
	for n := 0; n < len(s); n++ {
		_, err := rc.Open("b", []byte("k"), s[:n])
		mustDecryptErr(t, err, fmt.Sprintf("truncated to %d", n))
	}
	_, err := rc.Open("b", []byte("k"), append(bytes.Clone(s), 0))
	mustDecryptErr(t, err, "extended")
}

func TestRecordConcurrent(t *testing.T) {
	rc := NewRecordCipher(testKey(14), "acct")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := fmt.Appendf(nil, "%d/%d", g, i)
				v := testBytes(uint64(g*1000+i), i)
				got, err := rc.Open("b", k, rc.Seal("b", k, v))
				if err != nil || !bytes.Equal(got, v) {
					t.Errorf("goroutine %d item %d: %v", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
