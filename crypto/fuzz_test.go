package crypto

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// Fixed keys so that seed files in testdata/fuzz can hold valid ciphertexts.
var (
	fuzzRecordKey = testKey(60)
	fuzzWrapKey   = testKey(61)
	fuzzStreamKey = testKey(62)
)

const fuzzAccount = "fuzz-account"

func FuzzRecordOpen(f *testing.F) {
	rc := NewRecordCipher(fuzzRecordKey, fuzzAccount)
	f.Add("messages", []byte{0, 1}, rc.Seal("messages", []byte{0, 1}, []byte("hello")))
	f.Add("", []byte(nil), []byte{1})
	f.Fuzz(func(t *testing.T, bucket string, key, sealed []byte) {
		orig := bytes.Clone(sealed)
		pt, err := rc.Open(bucket, key, sealed)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) || pt != nil {
				t.Fatalf("Open = %x, %v", pt, err)
			}
		} else if len(sealed) != len(pt)+RecordOverhead {
			t.Fatalf("Open succeeded with %d bytes of plaintext from %d sealed", len(pt), len(sealed))
		}
		if !bytes.Equal(orig, sealed) {
			t.Fatal("Open modified its input")
		}
		// Whatever the input, it round-trips as a plaintext, and a flipped
		// byte of its sealed form is caught.
		s := rc.Seal(bucket, key, sealed)
		got, err := rc.Open(bucket, key, s)
		if err != nil || !bytes.Equal(got, sealed) {
			t.Fatalf("round trip: %v", err)
		}
		i := (len(bucket) + len(key)*7 + len(sealed)*13) % len(s)
		if _, err := rc.Open(bucket, key, flipped(s, i, 0x04)); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("flip of byte %d not detected: %v", i, err)
		}
	})
}

func FuzzUnwrapKey(f *testing.F) {
	f.Add(WrapKey(fuzzWrapKey, testBytes(63, 32), []byte("umk/password/u1")), []byte("umk/password/u1"))
	f.Add([]byte{1, 2, 3}, []byte(nil))
	f.Fuzz(func(t *testing.T, wrapped, aad []byte) {
		secret, err := UnwrapKey(fuzzWrapKey, wrapped, aad)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) || secret != nil {
				t.Fatalf("UnwrapKey = %x, %v", secret, err)
			}
		} else if len(wrapped) != len(secret)+WrapOverhead {
			t.Fatalf("UnwrapKey succeeded with %d bytes from %d", len(secret), len(wrapped))
		}
		w := WrapKey(fuzzWrapKey, wrapped, aad)
		got, err := UnwrapKey(fuzzWrapKey, w, aad)
		if err != nil || !bytes.Equal(got, wrapped) {
			t.Fatalf("round trip: %v", err)
		}
		if _, err := UnwrapKey(fuzzWrapKey, w, append(bytes.Clone(aad), 0)); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("longer aad accepted: %v", err)
		}
	})
}

func FuzzStreamReader(f *testing.F) {
	var buf bytes.Buffer
	w := NewStreamWriter(&buf, fuzzStreamKey)
	w.Write([]byte("Subject: hello\r\n\r\nbody\r\n"))
	w.Close()
	f.Add(buf.Bytes(), int64(3), uint16(10))
	f.Add(make([]byte, 16), int64(0), uint16(1))
	f.Fuzz(func(t *testing.T, enc []byte, off int64, n uint16) {
		sr, err := NewStreamReader(bytes.NewReader(enc), int64(len(enc)), fuzzStreamKey)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("NewStreamReader: %v", err)
			}
		} else {
			if want, _ := PlainSize(int64(len(enc))); sr.Size() != want {
				t.Fatalf("Size() = %d for %d bytes", sr.Size(), len(enc))
			}
			all, err := io.ReadAll(sr)
			if err != nil || int64(len(all)) != sr.Size() {
				t.Fatalf("ReadAll after a successful open: %d bytes, %v", len(all), err)
			}
			p := make([]byte, n)
			k, err := sr.ReadAt(p, off)
			if off < 0 {
				if err == nil {
					t.Fatal("negative offset accepted")
				}
			} else if err != nil && err != io.EOF {
				t.Fatalf("ReadAt: %v", err)
			} else if k > 0 && !bytes.Equal(p[:k], all[off:off+int64(k)]) {
				t.Fatal("ReadAt disagrees with ReadAll")
			}
		}

		// The input as a plaintext: round trip, and a flipped byte is caught.
		var out bytes.Buffer
		w := NewStreamWriter(&out, fuzzStreamKey)
		if _, err := w.Write(enc); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		ct := out.Bytes()
		sr, err = NewStreamReader(bytes.NewReader(ct), int64(len(ct)), fuzzStreamKey)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(sr)
		if err != nil || !bytes.Equal(got, enc) {
			t.Fatalf("round trip: %v", err)
		}
		i := int(uint64(off) % uint64(len(ct)))
		bad := flipped(ct, i, byte(n)|1)
		if sr, err := NewStreamReader(bytes.NewReader(bad), int64(len(bad)), fuzzStreamKey); err == nil {
			if _, err := io.ReadAll(sr); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("flip at %d not detected: %v", i, err)
			}
		}
	})
}
