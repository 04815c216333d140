package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
)

// ChunkSize is the number of plaintext bytes per stream chunk.
const ChunkSize = 64 * 1024

// Stream format (the STREAM construction of Hoang, Reyhanitabar, Rogaway and
// Vizár, "Online Authenticated-Encryption and its Nonce-Reuse
// Misuse-Resistance", 2015): the plaintext is cut into chunks of ChunkSize
// bytes; chunk i is sealed with AES-256-GCM under the blob's content key,
// with no associated data and the 12-byte nonce
//
//	0x00 0x00 0x00 || uint64 big-endian i || last flag (0x01 on the final chunk, else 0x00)
//
// and stored as ciphertext || 16-byte tag, one after the other with no header
// or padding. Every chunk but the last holds exactly ChunkSize bytes; the
// last holds 0 to ChunkSize-1 bytes, so a plaintext that is a multiple of
// ChunkSize (including the empty one) ends with an empty final chunk of 16
// bytes. The index in the nonce catches reordering, the flag catches
// truncation at a chunk boundary and appended chunks.
const (
	encChunkSize = ChunkSize + tagSize
	streamNonce  = 12
)

func streamNonceFor(nonce *[streamNonce]byte, idx uint64, last bool) []byte {
	*nonce = [streamNonce]byte{}
	binary.BigEndian.PutUint64(nonce[3:11], idx)
	if last {
		nonce[11] = 1
	}
	return nonce[:]
}

func newStreamAEAD(key Key) cipher.AEAD {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic("crypto: " + err.Error()) // impossible with a 32-byte key
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("crypto: " + err.Error())
	}
	return aead
}

// EncryptedSize returns the length of the stream that encrypts plainSize
// bytes. It panics if plainSize is negative.
func EncryptedSize(plainSize int64) int64 {
	if plainSize < 0 {
		panic("crypto: negative plaintext size")
	}
	return plainSize/ChunkSize*encChunkSize + plainSize%ChunkSize + tagSize
}

// PlainSize returns the plaintext length of a stream of encSize bytes, or
// ErrStreamSize if no stream has that length.
func PlainSize(encSize int64) (int64, error) {
	if encSize < tagSize {
		return 0, ErrStreamSize
	}
	rem := encSize % encChunkSize // length of the final chunk, which is never full
	if rem < tagSize {
		return 0, ErrStreamSize
	}
	return encSize/encChunkSize*ChunkSize + rem - tagSize, nil
}

// streamWriter encrypts a stream; see NewStreamWriter.
type streamWriter struct {
	w      io.Writer
	aead   cipher.AEAD
	buf    []byte // pending plaintext, cap encChunkSize so it can be sealed in place
	idx    uint64
	nonce  [streamNonce]byte
	err    error // sticky
	closed bool
}

var errWriterClosed = errors.New("crypto: stream writer is closed")

// NewStreamWriter returns a writer that encrypts what is written to it under
// key (a per-blob random content key: never use one key for two blobs) and
// writes the stream to w. It buffers at most one chunk. Close writes the
// final chunk and must be called; it does not close w. After an error from w,
// every later call returns that error.
func NewStreamWriter(w io.Writer, key Key) io.WriteCloser {
	return &streamWriter{
		w:    w,
		aead: newStreamAEAD(key),
		buf:  make([]byte, 0, encChunkSize),
	}
}

func (s *streamWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.closed {
		return 0, errWriterClosed
	}
	n := 0
	for len(p) > 0 {
		k := copy(s.buf[len(s.buf):ChunkSize], p)
		s.buf = s.buf[:len(s.buf)+k]
		p = p[k:]
		n += k
		// A full chunk is never the final one (the final chunk is always
		// shorter), so it can go out at once.
		if len(s.buf) == ChunkSize {
			if err := s.flush(false); err != nil {
				return n, err // the stream is broken for good; see s.err
			}
		}
	}
	return n, nil
}

func (s *streamWriter) flush(last bool) error {
	if s.idx == math.MaxUint64 {
		s.err = errors.New("crypto: stream too long")
		return s.err
	}
	ct := s.aead.Seal(s.buf[:0], streamNonceFor(&s.nonce, s.idx, last), s.buf, nil)
	s.idx++
	s.buf = s.buf[:0]
	if _, err := s.w.Write(ct); err != nil {
		s.err = err
		return err
	}
	return nil
}

// Close writes the final chunk (possibly empty). Calling it again returns an
// error and writes nothing.
func (s *streamWriter) Close() error {
	if s.err != nil {
		return s.err
	}
	if s.closed {
		return errWriterClosed
	}
	s.closed = true
	return s.flush(true)
}

// StreamReader decrypts a stream written by NewStreamWriter. It implements
// io.Reader, io.Seeker and io.ReaderAt. ReadAt is safe for concurrent use
// (calls are serialized); Read and Seek share one offset and are safe to call
// concurrently too, though that is rarely meaningful.
//
// The final chunk is authenticated when the reader is created, so Size can
// be trusted and truncation is detected at once; every other chunk is
// authenticated before any of its bytes are returned. Tampering shows as an
// error wrapping ErrDecrypt.
type StreamReader struct {
	r       io.ReaderAt
	aead    cipher.AEAD
	size    int64 // plaintext
	encSize int64
	nChunks int64 // >= 1

	mu     sync.Mutex // guards the fields below (the chunk cache)
	buf    []byte     // ciphertext read into it, decrypted in place
	cached int64      // index of the chunk whose plaintext is buf, or -1
	nonce  [streamNonce]byte

	posMu sync.Mutex
	pos   int64 // for Read and Seek
}

// NewStreamReader opens the stream of encSize bytes in r under key. It reads
// and authenticates the final chunk, so a truncated or extended stream fails
// here with an error wrapping ErrDecrypt.
func NewStreamReader(r io.ReaderAt, encSize int64, key Key) (*StreamReader, error) {
	size, err := PlainSize(encSize)
	if err != nil {
		return nil, err
	}
	sr := &StreamReader{
		r:       r,
		aead:    newStreamAEAD(key),
		size:    size,
		encSize: encSize,
		nChunks: (encSize-tagSize)/encChunkSize + 1,
		buf:     make([]byte, min(encSize, encChunkSize)), // small blobs are common
		cached:  -1,
	}
	sr.mu.Lock()
	_, err = sr.chunk(sr.nChunks - 1)
	sr.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return sr, nil
}

// Size returns the plaintext size.
func (sr *StreamReader) Size() int64 { return sr.size }

// chunk returns the plaintext of chunk idx, from the cache or by reading and
// authenticating it. sr.mu must be held; the result is valid until it is
// released.
func (sr *StreamReader) chunk(idx int64) ([]byte, error) {
	last := idx == sr.nChunks-1
	encLen := int64(encChunkSize)
	if last {
		encLen = sr.encSize - idx*encChunkSize
	}
	if sr.cached == idx {
		return sr.buf[:encLen-tagSize], nil
	}
	sr.cached = -1
	ct := sr.buf[:encLen]
	n, err := sr.r.ReadAt(ct, idx*encChunkSize)
	if n < len(ct) {
		if err == nil || err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			// The file is shorter than the length we were given.
			return nil, fmt.Errorf("%w (stream truncated in chunk %d)", ErrDecrypt, idx)
		}
		return nil, fmt.Errorf("crypto: reading stream chunk %d: %w", idx, err)
	}
	pt, err := sr.aead.Open(ct[:0], streamNonceFor(&sr.nonce, uint64(idx), last), ct, nil)
	if err != nil {
		return nil, fmt.Errorf("%w (stream chunk %d)", ErrDecrypt, idx)
	}
	sr.cached = idx
	return pt, nil
}

// ReadAt reads len(p) plaintext bytes at offset off. As io.ReaderAt
// requires, it returns an error (io.EOF at the end of the stream) whenever
// n < len(p).
func (sr *StreamReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("crypto: StreamReader.ReadAt: negative offset")
	}
	if off >= sr.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	sr.mu.Lock()
	defer sr.mu.Unlock()
	n := 0
	for n < len(p) && off < sr.size {
		pt, err := sr.chunk(off / ChunkSize)
		if err != nil {
			return n, err
		}
		k := copy(p[n:], pt[off%ChunkSize:])
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Read reads plaintext from the current offset.
func (sr *StreamReader) Read(p []byte) (int, error) {
	sr.posMu.Lock()
	defer sr.posMu.Unlock()
	if sr.pos >= sr.size {
		return 0, io.EOF
	}
	n, err := sr.ReadAt(p, sr.pos)
	sr.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil // report EOF on the next call, as most readers do
	}
	return n, err
}

// Seek sets the offset for the next Read. Seeking past the end is allowed
// (Read then returns io.EOF); seeking before the start is an error.
func (sr *StreamReader) Seek(offset int64, whence int) (int64, error) {
	sr.posMu.Lock()
	defer sr.posMu.Unlock()
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = sr.pos + offset
	case io.SeekEnd:
		abs = sr.size + offset
	default:
		return 0, errors.New("crypto: StreamReader.Seek: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("crypto: StreamReader.Seek: negative position")
	}
	sr.pos = abs
	return abs, nil
}

var (
	_ io.ReadSeeker = (*StreamReader)(nil)
	_ io.ReaderAt   = (*StreamReader)(nil)
)
