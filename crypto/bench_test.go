package crypto

import (
	"bytes"
	"io"
	"testing"
)

func BenchmarkArgon2(b *testing.B) {
	p := NewArgon2Params()
	pw := []byte("correct horse battery staple")
	for b.Loop() {
		p.DeriveKEK(pw)
	}
}

func BenchmarkTokenKEK(b *testing.B) {
	tok := []byte(NormalizeToken(NewToken(20)))
	salt := testBytes(70, 16)
	for b.Loop() {
		TokenKEK(tok, salt)
	}
}

func BenchmarkRecordSeal(b *testing.B) {
	rc := NewRecordCipher(testKey(71), "acct")
	v := testBytes(71, 500)
	b.SetBytes(int64(len(v)))
	for b.Loop() {
		rc.Seal("messages", []byte("00000001"), v)
	}
}

func BenchmarkRecordOpen(b *testing.B) {
	rc := NewRecordCipher(testKey(72), "acct")
	s := rc.Seal("messages", []byte("00000001"), testBytes(72, 500))
	b.SetBytes(500)
	for b.Loop() {
		if _, err := rc.Open("messages", []byte("00000001"), s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKEMSeal(b *testing.B) {
	pk, _ := testKEM()
	msg := testBytes(73, 32)
	info := []byte("kreide/v1/blob-key/u1/b1")
	for b.Loop() {
		if _, err := pk.Seal(info, msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKEMOpen(b *testing.B) {
	pk, sk := testKEM()
	info := []byte("kreide/v1/blob-key/u1/b1")
	sealed, _ := pk.Seal(info, testBytes(74, 32))
	for b.Loop() {
		if _, err := sk.Open(info, sealed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKEMOpenExpanded opens with a key that keeps its expanded form:
// the difference to BenchmarkKEMOpen is the cost of expanding the seed.
func BenchmarkKEMOpenExpanded(b *testing.B) {
	pk, sk := testKEM()
	info := []byte("kreide/v1/blob-key/u1/b1")
	sealed, _ := pk.Seal(info, testBytes(74, 32))
	x, err := sk.Expand()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := x.Open(info, sealed); err != nil {
			b.Fatal(err)
		}
	}
}

const benchStreamSize = 1 << 20

func BenchmarkStreamWrite(b *testing.B) {
	key := testKey(75)
	plain := testBytes(75, benchStreamSize)
	b.SetBytes(benchStreamSize)
	for b.Loop() {
		w := NewStreamWriter(io.Discard, key)
		w.Write(plain)
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStreamRead(b *testing.B) {
	key := testKey(76)
	enc := encryptStream(b, key, testBytes(76, benchStreamSize), 0)
	buf := make([]byte, 32*1024) // io.Copy's buffer size
	b.SetBytes(benchStreamSize)
	for b.Loop() {
		sr, err := NewStreamReader(bytes.NewReader(enc), int64(len(enc)), key)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{sr}, buf); err != nil {
			b.Fatal(err)
		}
	}
}
