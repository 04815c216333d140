package config

import (
	"math"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    Size
		wantErr string // substring of the error; "" means no error
	}{
		{in: "50MiB", want: 50 << 20},
		{in: "50 MiB", want: 50 << 20},
		{in: "  50   MiB ", want: 50 << 20},
		{in: "2GiB", want: 2 << 30},
		{in: "500KiB", want: 500 << 10},
		{in: "1TiB", want: 1 << 40},
		{in: "10MB", want: 10_000_000},
		{in: "10 KB", want: 10_000},
		{in: "3GB", want: 3_000_000_000},
		{in: "1TB", want: 1_000_000_000_000},
		{in: "1024", want: 1024},
		{in: "1024 B", want: 1024},
		{in: "0", want: 0},
		{in: "50mib", want: 50 << 20},
		{in: "10mb", want: 10_000_000},
		{in: "1.5 GiB", want: 3 << 29},
		{in: "0.5KiB", want: 512},
		{in: "2.0", want: 2},
		{in: "0.1 KiB", wantErr: "not a whole number of bytes"},
		{in: "1.5", wantErr: "not a whole number of bytes"},
		{in: "true", wantErr: "must start with a number"},
		{in: "nan", wantErr: "must start with a number"},
		{in: "1_000 KB", want: 1_000_000},
		{in: "8589934591 GiB", want: 8589934591 << 30},
		{in: "9223372036854775807", want: math.MaxInt64},

		{in: "", wantErr: "empty size"},
		{in: "   ", wantErr: "empty size"},
		{in: "-1", wantErr: "must not be negative"},
		{in: "-5 MiB", wantErr: "must not be negative"},
		{in: "MiB", wantErr: "must start with a number"},
		{in: "+5", wantErr: "must start with a number"},
		{in: "lots", wantErr: "must start with a number"},
		{in: "5 parsecs", wantErr: `unknown unit "parsecs"`},
		{in: "5M", wantErr: `unknown unit "M"`},
		{in: "5 MiB extra", wantErr: "unknown unit"},
		{in: "1e3", wantErr: "unknown unit"},
		{in: "1.2.3 MiB", wantErr: "is not a number"},
		{in: ".5 MiB", wantErr: "is not a number"},
		{in: "5. MiB", wantErr: "is not a number"},
		{in: "_5", wantErr: "is not a number"},
		{in: "5__0", wantErr: "is not a number"},
		{in: "8589934592 GiB", wantErr: "too large"},
		{in: "9223372036854775808", wantErr: "too large"},
		{in: strings.Repeat("9", 100), wantErr: "too large"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSize(%q) = %d, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestSizeString(t *testing.T) {
	tests := []struct {
		in   Size
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{1000, "1 KB"},
		{1023, "1023 B"},
		{1024, "1 KiB"},
		{1536, "1536 B"},
		{50 * MiB, "50 MiB"},
		{2 * GiB, "2 GiB"},
		{4 * GiB, "4 GiB"},
		{10 * MB, "10 MB"},
		{1024 * GiB, "1 TiB"},
		{-5, "-5 B"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
	}
}

func TestSizeRoundTrip(t *testing.T) {
	for _, s := range []Size{0, 1, 999, 1000, 1024, 1536, 50 * MiB, 3 * GB, math.MaxInt64, math.MaxInt64 - 1, 1 << 62} {
		text, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Size
		if err := back.UnmarshalText(text); err != nil || back != s {
			t.Errorf("%d → %q → %d, %v", int64(s), text, int64(back), err)
		}
	}
}
