package config

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Size is a number of bytes. In the config file it is written as a string with a unit, like "50 MiB",
// "2GiB", "500 KiB" or "10 MB", or as a plain integer number of bytes (1024 or "1024"). Units: B; KB, MB,
// GB, TB (powers of 1000); KiB, MiB, GiB, TiB (powers of 1024). Units are case-insensitive, and a decimal
// number is allowed ("1.5 GiB") when it makes a whole number of bytes.
type Size int64

// Binary and decimal size units.
const (
	B   Size = 1
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
	TiB Size = 1 << 40
	KB  Size = 1000
	MB  Size = 1000 * KB
	GB  Size = 1000 * MB
	TB  Size = 1000 * GB
)

// sizeUnits lists the units in the order String prefers them: the largest binary unit that divides the
// value, then the largest decimal one.
var sizeUnits = []struct {
	name string
	size Size
}{
	{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB},
	{"TB", TB}, {"GB", GB}, {"MB", MB}, {"KB", KB},
	{"B", B},
}

// ParseSize parses a size such as "50 MiB" (see Size).
func ParseSize(s string) (Size, error) {
	orig := s
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New(`empty size: write a number with a unit, like "50 MiB"`)
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("invalid size %q: must not be negative", orig)
	}
	// Split the number from the unit.
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || s[i] == '_') {
		i++
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	if num == "" {
		return 0, fmt.Errorf("invalid size %q: must start with a number, like \"50 MiB\"", orig)
	}
	mult := Size(0)
	if unit == "" {
		mult = B
	}
	for _, u := range sizeUnits {
		if strings.EqualFold(unit, u.name) {
			mult = u.size
			break
		}
	}
	if mult == 0 {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)", orig, unit)
	}
	if strings.Count(num, ".") > 1 || strings.HasPrefix(num, ".") || strings.HasSuffix(num, ".") ||
		strings.HasPrefix(num, "_") || strings.HasSuffix(num, "_") || strings.Contains(num, "__") ||
		strings.Contains(num, "_.") || strings.Contains(num, "._") {
		return 0, fmt.Errorf("invalid size %q: %q is not a number", orig, num)
	}
	num = strings.ReplaceAll(num, "_", "")
	if len(num) > 40 {
		return 0, fmt.Errorf("invalid size %q: too large (at most %d bytes)", orig, int64(math.MaxInt64))
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("invalid size %q: %q is not a number", orig, num)
	}
	r.Mul(r, new(big.Rat).SetInt64(int64(mult)))
	if !r.IsInt() {
		return 0, fmt.Errorf("invalid size %q: not a whole number of bytes", orig)
	}
	n := r.Num()
	if !n.IsInt64() {
		return 0, fmt.Errorf("invalid size %q: too large (at most %d bytes)", orig, int64(math.MaxInt64))
	}
	return Size(n.Int64()), nil
}

// String formats s with the largest unit that represents it exactly, e.g. "50 MiB", "10 MB" or "1000 B".
// ParseSize(s.String()) == s for every s >= 0.
func (s Size) String() string {
	if s < 0 {
		return strconv.FormatInt(int64(s), 10) + " B"
	}
	for _, u := range sizeUnits {
		if s != 0 && s%u.size == 0 {
			return strconv.FormatInt(int64(s/u.size), 10) + " " + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + " B"
}

// MarshalText implements encoding.TextMarshaler.
func (s Size) MarshalText() ([]byte, error) {
	return []byte(s.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
