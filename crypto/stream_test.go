package crypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
)

var streamSizes = []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 5}

// encryptStream encrypts plain, writing it in pieces of writeSize bytes
// (all at once if writeSize <= 0).
func encryptStream(t testing.TB, key Key, plain []byte, writeSize int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewStreamWriter(&buf, key)
	if writeSize <= 0 {
		writeSize = len(plain) + 1
	}
	for p := plain; len(p) > 0; {
		n := min(writeSize, len(p))
		if k, err := w.Write(p[:n]); k != n || err != nil {
			t.Fatalf("Write = %d, %v", k, err)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func openStream(t testing.TB, key Key, enc []byte) *StreamReader {
	t.Helper()
	sr, err := NewStreamReader(bytes.NewReader(enc), int64(len(enc)), key)
	if err != nil {
		t.Fatalf("NewStreamReader: %v", err)
	}
	return sr
}

func TestStreamRoundTrip(t *testing.T) {
	key := testKey(40)
	for _, size := range streamSizes {
		plain := testBytes(uint64(size), size)
		for _, ws := range []int{0, 1000, ChunkSize, ChunkSize + 7} {
			if ws == 1000 && size > 2*ChunkSize {
				continue // slow path covered by smaller sizes
			}
			t.Run(fmt.Sprintf("size=%d/write=%d", size, ws), func(t *testing.T) {
				enc := encryptStream(t, key, plain, ws)
				if int64(len(enc)) != EncryptedSize(int64(size)) {
					t.Fatalf("stream is %d bytes, EncryptedSize says %d", len(enc), EncryptedSize(int64(size)))
				}
				sr := openStream(t, key, enc)
				if sr.Size() != int64(size) {
					t.Fatalf("Size() = %d, want %d", sr.Size(), size)
				}
				got, err := io.ReadAll(sr)
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("ReadAll: %d bytes, %v", len(got), err)
				}
			})
		}
	}
	a := encryptStream(t, NewKey(), []byte("x"), 0)
	b := encryptStream(t, NewKey(), []byte("x"), 0)
	if bytes.Equal(a, b) {
		t.Fatal("different keys give the same stream")
	}
}

// TestStreamLayout decrypts streams with AES-GCM directly, following the
// documented layout, to pin the format down independently of StreamReader.
func TestStreamLayout(t *testing.T) {
	key := testKey(41)
	block, _ := aes.NewCipher(key[:])
	gcm, _ := cipher.NewGCM(block)
	for _, size := range streamSizes {
		plain := testBytes(uint64(size)+1, size)
		enc := encryptStream(t, key, plain, 0)
		var got []byte
		wantChunks := size/ChunkSize + 1
		for i := 0; len(enc) > 0; i++ {
			n := min(len(enc), ChunkSize+16)
			last := i == wantChunks-1
			if last != (len(enc) < ChunkSize+16) {
				t.Fatalf("size %d: chunk %d has %d bytes, last=%v", size, i, n, last)
			}
			nonce := make([]byte, 12)
			binary.BigEndian.PutUint64(nonce[3:], uint64(i))
			if last {
				nonce[11] = 1
			}
			pt, err := gcm.Open(nil, nonce, enc[:n], nil)
			if err != nil {
				t.Fatalf("size %d: chunk %d does not open with the documented nonce", size, i)
			}
			got = append(got, pt...)
			enc = enc[n:]
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("size %d: wrong plaintext", size)
		}
	}
	if n := len(encryptStream(t, key, nil, 0)); n != 16 {
		t.Fatalf("empty stream is %d bytes, want 16", n)
	}
}

func TestEncryptedSizePlainSize(t *testing.T) {
	known := []struct{ plain, enc int64 }{
		{0, 16},
		{1, 17},
		{ChunkSize - 1, ChunkSize + 15},
		{ChunkSize, ChunkSize + 16 + 16},
		{ChunkSize + 1, ChunkSize + 16 + 17},
		{3*ChunkSize + 5, 3*(ChunkSize+16) + 21},
		{1 << 40, (1<<40)/ChunkSize*(ChunkSize+16) + 16},
	}
	for _, tc := range known {
		if got := EncryptedSize(tc.plain); got != tc.enc {
			t.Errorf("EncryptedSize(%d) = %d, want %d", tc.plain, got, tc.enc)
		}
		if got, err := PlainSize(tc.enc); err != nil || got != tc.plain {
			t.Errorf("PlainSize(%d) = %d, %v; want %d", tc.enc, got, err, tc.plain)
		}
	}
	// Every length up to a few chunks is either the image of exactly one
	// plaintext size or rejected.
	valid := map[int64]int64{}
	for p := int64(0); p <= 3*ChunkSize+100; p++ {
		valid[EncryptedSize(p)] = p
	}
	for e := int64(-1); e <= EncryptedSize(3*ChunkSize+100); e++ {
		p, err := PlainSize(e)
		want, ok := valid[e]
		if ok != (err == nil) || (ok && p != want) {
			t.Fatalf("PlainSize(%d) = %d, %v; want %d, valid=%v", e, p, err, want, ok)
		}
		if err != nil && !errors.Is(err, ErrDecrypt) {
			t.Fatalf("PlainSize(%d) error %v does not wrap ErrDecrypt", e, err)
		}
	}
}

func TestStreamReadAtSeek(t *testing.T) {
	key := testKey(42)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range streamSizes {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			plain := testBytes(uint64(size)+2, size)
			sr := openStream(t, key, encryptStream(t, key, plain, 0))
			for range 300 {
				off := rng.Int64N(int64(size) + 10)
				n := rng.IntN(3*ChunkSize/2 + 1)
				if rng.IntN(4) == 0 {
					n = rng.IntN(20)
				}
				p := make([]byte, n)
				got, err := sr.ReadAt(p, off)
				want := 0
				if off < int64(size) {
					want = min(n, size-int(off))
				}
				if got != want {
					t.Fatalf("ReadAt(%d bytes, %d) = %d, want %d (%v)", n, off, got, want, err)
				}
				if (got < n) != (err == io.EOF) || (err != nil && err != io.EOF) {
					t.Fatalf("ReadAt(%d bytes, %d) = %d, %v", n, off, got, err)
				}
				if got > 0 && !bytes.Equal(p[:got], plain[off:off+int64(got)]) {
					t.Fatalf("ReadAt(%d bytes, %d): wrong data", n, off)
				}

				// Seek + Read, with every whence.
				var pos int64
				var serr error
				switch rng.IntN(3) {
				case 0:
					pos, serr = sr.Seek(off, io.SeekStart)
				case 1:
					cur, _ := sr.Seek(0, io.SeekCurrent)
					pos, serr = sr.Seek(off-cur, io.SeekCurrent)
				case 2:
					pos, serr = sr.Seek(off-int64(size), io.SeekEnd)
				}
				if serr != nil || pos != off {
					t.Fatalf("Seek to %d = %d, %v", off, pos, serr)
				}
				got, err = io.ReadFull(sr, p)
				if got != want || (got < n && err == nil) {
					t.Fatalf("Seek(%d)+ReadFull(%d) = %d, %v; want %d", off, n, got, err, want)
				}
				if got > 0 && !bytes.Equal(p[:got], plain[off:off+int64(got)]) {
					t.Fatalf("Seek(%d)+Read: wrong data", off)
				}
			}
			if _, err := sr.Seek(-1, io.SeekStart); err == nil {
				t.Fatal("Seek to -1 succeeded")
			}
			if _, err := sr.Seek(0, 7); err == nil {
				t.Fatal("Seek with bad whence succeeded")
			}
			if _, err := sr.ReadAt(make([]byte, 1), -1); err == nil {
				t.Fatal("ReadAt at -1 succeeded")
			}
		})
	}
}

func TestStreamConcurrentReadAt(t *testing.T) {
	key := testKey(43)
	size := 3*ChunkSize + 5
	plain := testBytes(43, size)
	sr := openStream(t, key, encryptStream(t, key, plain, 0))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for range 200 {
				off := rng.Int64N(int64(size))
				p := make([]byte, rng.IntN(ChunkSize+100))
				n, err := sr.ReadAt(p, off)
				if (err != nil && err != io.EOF) || !bytes.Equal(p[:n], plain[off:off+int64(n)]) {
					t.Errorf("concurrent ReadAt(%d) = %d, %v", off, n, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// readTampered opens and fully reads a tampered stream. It fails the test
// unless reading fails with ErrDecrypt, and unless every byte it returned
// before failing was correct.
func readTampered(t *testing.T, key Key, enc, plain []byte, what string) {
	t.Helper()
	sr, err := NewStreamReader(bytes.NewReader(enc), int64(len(enc)), key)
	if err != nil {
		mustDecryptErr(t, err, what+": NewStreamReader")
		return
	}
	got, err := io.ReadAll(sr)
	mustDecryptErr(t, err, what+": ReadAll")
	if !bytes.HasPrefix(plain, got) {
		t.Fatalf("%s: returned wrong data before failing", what)
	}
	// Random access over the whole stream must fail too.
	p := make([]byte, sr.Size())
	n, err := sr.ReadAt(p, 0)
	mustDecryptErr(t, err, what+": ReadAt")
	if !bytes.Equal(p[:n], plain[:n]) {
		t.Fatalf("%s: ReadAt returned wrong data before failing", what)
	}
}

func TestStreamTamper(t *testing.T) {
	key := testKey(44)
	plain := testBytes(44, 2*ChunkSize+1000) // three chunks
	enc := encryptStream(t, key, plain, 0)
	const ec = ChunkSize + 16
	positions := map[int]bool{}
	for i := 0; i < len(enc); i += 97 {
		positions[i] = true
	}
	for _, start := range []int{0, ec, 2 * ec} { // start and tag of every chunk
		end := min(start+ec, len(enc))
		for i := start; i < start+24; i++ {
			positions[i] = true
		}
		for i := end - 24; i < end; i++ {
			positions[i] = true
		}
	}
	positions[len(enc)-1] = true
	for i := range positions {
		readTampered(t, key, flipped(enc, i, 0x01), plain, fmt.Sprintf("byte %d flipped", i))
	}
	readTampered(t, testKey(45), enc, plain, "wrong key")
}

func TestStreamStructuralAttacks(t *testing.T) {
	key := testKey(46)
	const ec = ChunkSize + 16
	plain := testBytes(46, 3*ChunkSize+5) // chunks 0..2 full, chunk 3 final with 5 bytes
	enc := encryptStream(t, key, plain, 0)
	chunk := func(i int) []byte { return enc[i*ec : min((i+1)*ec, len(enc))] }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	// Every blob has its own content key (a key never encrypts two streams:
	// see the package rules), so a chunk of another blob is under another key.
	other := encryptStream(t, testKey(50), plain, 0)
	exactKey := testKey(51)
	exact := encryptStream(t, exactKey, plain[:2*ChunkSize], 0) // ends with an empty final chunk
	exactChunk := func(i int) []byte { return exact[i*ec : min((i+1)*ec, len(exact))] }

	tests := []struct {
		name string
		enc  []byte
		key  Key
	}{
		{"truncated at chunk boundary 3", enc[:3*ec], key},
		{"truncated at chunk boundary 1", enc[:ec], key},
		{"truncated to nothing", nil, key},
		{"truncated mid final chunk", enc[:len(enc)-3], key},
		{"truncated mid chunk 1", enc[:ec+ec/2], key},
		{"truncated to a 16-byte final", enc[:2*ec+16], key},
		{"final chunk dropped, chunk 2 made final by length", cat(chunk(0), chunk(1), chunk(2)[:ec-16]), key},
		{"chunks 0 and 1 swapped", cat(chunk(1), chunk(0), chunk(2), chunk(3)), key},
		{"chunks 1 and 2 swapped", cat(chunk(0), chunk(2), chunk(1), chunk(3)), key},
		{"chunk 0 duplicated over chunk 1", cat(chunk(0), chunk(0), chunk(2), chunk(3)), key},
		{"chunk appended after final", cat(enc, chunk(0)), key},
		{"final chunk appended twice", cat(enc, chunk(3)), key},
		{"16 bytes appended", cat(enc, make([]byte, 16)), key},
		{"one byte appended", cat(enc, []byte{0}), key},
		{"empty final dropped", exact[:2*ec], exactKey},
		{"empty final duplicated", cat(exact, exactChunk(2)), exactKey},
		{"empty final moved forward", cat(exactChunk(0), exactChunk(2), exactChunk(1)), exactKey},
		{"chunk 1 from another blob", cat(chunk(0), other[ec:2*ec], chunk(2), chunk(3)), key},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			readTampered(t, tc.key, tc.enc, plain, tc.name)
		})
	}
}

// TestStreamShortUnderlyingFile: the size given to NewStreamReader is larger
// than the data, like a file truncated after its size was recorded.
func TestStreamShortUnderlyingFile(t *testing.T) {
	key := testKey(47)
	plain := testBytes(47, 2*ChunkSize+10)
	enc := encryptStream(t, key, plain, 0)
	_, err := NewStreamReader(bytes.NewReader(enc[:len(enc)-5]), int64(len(enc)), key)
	mustDecryptErr(t, err, "file shorter than the recorded size")

	// A chunk in the middle missing from the file: found when read.
	sr := openStream(t, key, enc)
	sr.r = bytes.NewReader(enc[:ChunkSize])
	sr.cached = -1
	_, err = sr.ReadAt(make([]byte, 10), 0)
	mustDecryptErr(t, err, "ReadAt of a chunk cut short")

	// Other I/O errors pass through and are not mistaken for tampering.
	ioErr := errors.New("disk on fire")
	_, err = NewStreamReader(errReaderAt{ioErr}, int64(len(enc)), key)
	if !errors.Is(err, ioErr) || errors.Is(err, ErrDecrypt) {
		t.Fatalf("I/O error became %v", err)
	}
}

type errReaderAt struct{ err error }

func (e errReaderAt) ReadAt([]byte, int64) (int, error) { return 0, e.err }

type failWriter struct {
	n   int // writes that succeed
	err error
}

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	f.n--
	return len(p), nil
}

func TestStreamWriterErrors(t *testing.T) {
	boom := errors.New("boom")
	w := NewStreamWriter(&failWriter{n: 1, err: boom}, testKey(48))
	if _, err := w.Write(make([]byte, ChunkSize)); err != nil {
		t.Fatalf("first chunk: %v", err)
	}
	if _, err := w.Write(make([]byte, ChunkSize)); !errors.Is(err, boom) {
		t.Fatalf("second chunk: %v, want boom", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, boom) {
		t.Fatalf("write after error: %v, want boom", err)
	}
	if err := w.Close(); !errors.Is(err, boom) {
		t.Fatalf("Close after error: %v, want boom", err)
	}

	var buf bytes.Buffer
	w = NewStreamWriter(&buf, testKey(48))
	w.Write([]byte("hello"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	n := buf.Len()
	if err := w.Close(); err == nil {
		t.Fatal("second Close succeeded")
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("Write after Close succeeded")
	}
	if buf.Len() != n {
		t.Fatal("writes after Close reached the underlying writer")
	}
}

func TestStreamWriterBuffersOneChunk(t *testing.T) {
	var buf bytes.Buffer
	w := NewStreamWriter(&buf, testKey(49))
	w.Write(make([]byte, ChunkSize-1))
	if buf.Len() != 0 {
		t.Fatal("partial chunk written early")
	}
	w.Write([]byte{0})
	if buf.Len() != ChunkSize+16 {
		t.Fatalf("full chunk not written at once: %d bytes out", buf.Len())
	}
	w.Write(make([]byte, 2*ChunkSize+3))
	if buf.Len() != 3*(ChunkSize+16) {
		t.Fatalf("after 3 chunks + 3 bytes: %d bytes out", buf.Len())
	}
	w.Close()
	if buf.Len() != int(EncryptedSize(3*ChunkSize+3)) {
		t.Fatalf("after Close: %d bytes", buf.Len())
	}
}
