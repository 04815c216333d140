package message

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// checkInvariants verifies what every parsed structure guarantees.
func checkInvariants(t testing.TB, s *Structure, size int64) {
	t.Helper()
	if s.Size != size {
		t.Fatalf("Size = %d, want %d", s.Size, size)
	}
	r := s.Root
	if r == nil {
		t.Fatalf("no root")
	}
	if r.HeaderStart != 0 || r.BodyStart != s.HeaderSize || r.End != s.Size {
		t.Fatalf("root [%d %d %d] disagrees with HeaderSize %d, Size %d", r.HeaderStart, r.BodyStart, r.End, s.HeaderSize, s.Size)
	}
	n := 0
	var rec func(p *Part, depth int, lo, hi int64)
	rec = func(p *Part, depth int, lo, hi int64) {
		n++
		if !(lo <= p.HeaderStart && p.HeaderStart <= p.BodyStart && p.BodyStart <= p.End && p.End <= hi) {
			t.Fatalf("part [%d %d %d] not ordered within [%d %d]", p.HeaderStart, p.BodyStart, p.End, lo, hi)
		}
		if p.Lines < 0 || p.Lines > p.Size() {
			t.Fatalf("part Lines %d, Size %d", p.Lines, p.Size())
		}
		if p.Type == "" || p.Subtype == "" || p.Encoding == "" {
			t.Fatalf("part without type or encoding: %q/%q %q", p.Type, p.Subtype, p.Encoding)
		}
		if depth > MaxDepth+1 {
			t.Fatalf("depth %d", depth)
		}
		if (p.Type == "multipart") != p.IsMultipart() {
			t.Fatalf("multipart %s/%s with %d children", p.Type, p.Subtype, len(p.Children))
		}
		if p.Envelope != nil && !p.IsMessage() {
			t.Fatalf("envelope on a %s/%s with %d children", p.Type, p.Subtype, len(p.Children))
		}
		if len(p.Children) > 0 && !p.IsMultipart() && !p.IsMessage() {
			t.Fatalf("children of %s/%s", p.Type, p.Subtype)
		}
		if p.IsMessage() {
			c := p.Children[0]
			if c.HeaderStart != p.BodyStart || c.End != p.End {
				t.Fatalf("embedded message [%d %d] != body [%d %d]", c.HeaderStart, c.End, p.BodyStart, p.End)
			}
		}
		lo = p.BodyStart
		for _, c := range p.Children {
			rec(c, depth+1, lo, p.End)
			lo = c.End
		}
	}
	rec(r, 0, 0, s.Size)
	if n > MaxParts {
		t.Fatalf("%d parts", n)
	}
}

func addSeeds(f *testing.F, fn func(msg []byte)) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		fn(b)
	}
}

// FuzzParse checks that Parse never fails or panics on any input, that the
// structure satisfies its invariants, and that it survives Marshal and
// Unmarshal unchanged.
func FuzzParse(f *testing.F) {
	addSeeds(f, func(msg []byte) { f.Add(msg) })
	f.Fuzz(func(t *testing.T, msg []byte) {
		s, err := Parse(bytes.NewReader(msg))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		checkInvariants(t, s, int64(len(msg)))
		b := s.Marshal()
		s2, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("Unmarshal(Marshal()): %v", err)
		}
		if !reflect.DeepEqual(s, s2) {
			t.Fatalf("round trip changed the structure:\n%+v\n%+v", s, s2)
		}
		if b2 := s2.Marshal(); !bytes.Equal(b, b2) {
			t.Fatalf("Marshal not deterministic")
		}
		// Every part number Walk reports resolves, and sections lie
		// within the message.
		s.Walk(func(path []int, p *Part) bool {
			if len(path) > 0 {
				if q, ok := s.Part(path); !ok || q != p {
					t.Fatalf("Part(%v) does not find the walked part", path)
				}
			}
			for _, spec := range []string{"", "MIME", "HEADER", "TEXT"} {
				if start, end, ok := s.Section(path, spec); ok && !(0 <= start && start <= end && end <= s.Size) {
					t.Fatalf("Section(%v, %s) = [%d %d]", path, spec, start, end)
				}
			}
			return true
		})
	})
}

// FuzzUnmarshal checks that Unmarshal rejects garbage without panicking
// and that whatever it accepts is a valid structure that encodes stably.
func FuzzUnmarshal(f *testing.F) {
	addSeeds(f, func(msg []byte) {
		s, err := Parse(bytes.NewReader(msg))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s.Marshal())
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		UnmarshalEnvelope(b)
		s, err := Unmarshal(b)
		if err != nil {
			if s != nil {
				t.Fatalf("non-nil structure with error")
			}
			return
		}
		b2 := s.Marshal()
		s2, err := Unmarshal(b2)
		if err != nil {
			t.Fatalf("re-encoding rejected: %v", err)
		}
		if !reflect.DeepEqual(s, s2) {
			t.Fatalf("re-encoding changed the structure")
		}
		if b3 := s2.Marshal(); !bytes.Equal(b2, b3) {
			t.Fatalf("encoding not stable")
		}
		s.Walk(func(path []int, p *Part) bool {
			s.Part(path)
			for _, spec := range []string{"", "MIME", "HEADER", "TEXT"} {
				if start, end, ok := s.Section(path, spec); ok && !(0 <= start && start <= end && end <= s.Size) {
					t.Fatalf("Section(%v, %s) = [%d %d]", path, spec, start, end)
				}
			}
			return true
		})
	})
}
