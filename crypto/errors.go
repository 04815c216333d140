package crypto

import (
	"errors"
	"fmt"
)

// ErrDecrypt is returned (possibly wrapped; test with errors.Is) whenever
// authenticated decryption fails: wrong key, wrong associated data, a flipped
// bit, an unknown format version, a truncated or extended input. The package
// deliberately never says which, so that callers cannot leak it either.
var ErrDecrypt = errors.New("crypto: decryption failed: data is corrupt or the key is wrong")

// ErrStreamSize is returned by PlainSize and NewStreamReader when a length
// cannot be that of a stream written by NewStreamWriter, which is how a
// truncation in the middle of a chunk usually shows. It wraps ErrDecrypt.
var ErrStreamSize = fmt.Errorf("%w (invalid stream length)", ErrDecrypt)
