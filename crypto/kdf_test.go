package crypto

import (
	"bytes"
	"encoding/json"
	"testing"

	"golang.org/x/crypto/argon2"
)

// cheapArgon2 are fast parameters for tests; the defaults run once only.
func cheapArgon2(salt []byte) Argon2Params {
	return Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1, Salt: salt}
}

func TestNewArgon2Params(t *testing.T) {
	p := NewArgon2Params()
	if p.Time != 3 || p.MemoryKiB != 64*1024 || p.Threads != 4 || len(p.Salt) != 16 {
		t.Fatalf("NewArgon2Params() = %+v", p)
	}
	if q := NewArgon2Params(); bytes.Equal(p.Salt, q.Salt) {
		t.Fatal("salts repeat")
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	// The default parameters run once, to show they work and match argon2id.
	k := p.DeriveKEK([]byte("correct horse"))
	want := argon2.IDKey([]byte("correct horse"), p.Salt, 3, 64*1024, 4, 32)
	if !bytes.Equal(k[:], want) {
		t.Fatal("DeriveKEK differs from argon2.IDKey with the default parameters")
	}
}

func TestDeriveKEK(t *testing.T) {
	salt := testBytes(5, 16)
	base := cheapArgon2(salt).DeriveKEK([]byte("password"))
	want := argon2.IDKey([]byte("password"), salt, 1, 64, 1, 32)
	if !bytes.Equal(base[:], want) {
		t.Fatal("DeriveKEK is not argon2id")
	}
	tests := []struct {
		name string
		p    Argon2Params
		pw   string
	}{
		{"password", cheapArgon2(salt), "Password"},
		{"salt", cheapArgon2(testBytes(6, 16)), "password"},
		{"time", Argon2Params{Time: 2, MemoryKiB: 64, Threads: 1, Salt: salt}, "password"},
		{"memory", Argon2Params{Time: 1, MemoryKiB: 128, Threads: 1, Salt: salt}, "password"},
		{"threads", Argon2Params{Time: 1, MemoryKiB: 64, Threads: 2, Salt: salt}, "password"},
	}
	for _, tc := range tests {
		if tc.p.DeriveKEK([]byte(tc.pw)) == base {
			t.Errorf("changing the %s does not change the KEK", tc.name)
		}
	}
}

func TestArgon2Validate(t *testing.T) {
	salt := testBytes(7, 16)
	tests := []struct {
		name string
		p    Argon2Params
		ok   bool
	}{
		{"defaults", NewArgon2Params(), true},
		{"cheap", cheapArgon2(salt), true},
		{"zero", Argon2Params{}, false},
		{"time 0", Argon2Params{Time: 0, MemoryKiB: 64, Threads: 1, Salt: salt}, false},
		{"time huge", Argon2Params{Time: 1 << 30, MemoryKiB: 64, Threads: 1, Salt: salt}, false},
		{"threads 0", Argon2Params{Time: 1, MemoryKiB: 64, Threads: 0, Salt: salt}, false},
		{"memory below 8 KiB per lane", Argon2Params{Time: 1, MemoryKiB: 31, Threads: 4, Salt: salt}, false},
		{"memory 8 KiB per lane", Argon2Params{Time: 1, MemoryKiB: 32, Threads: 4, Salt: salt}, true},
		{"memory huge", Argon2Params{Time: 1, MemoryKiB: 1 << 31, Threads: 1, Salt: salt}, false},
		{"no salt", Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}, false},
		{"short salt", cheapArgon2(salt[:7]), false},
		{"8-byte salt", cheapArgon2(salt[:8]), true},
	}
	for _, tc := range tests {
		err := tc.p.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if !tc.ok {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s: DeriveKEK did not panic", tc.name)
					}
				}()
				tc.p.DeriveKEK([]byte("x"))
			}()
		}
	}
}

func TestArgon2ParamsJSON(t *testing.T) {
	p := NewArgon2Params()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"t", "m", "p", "s"} {
		if _, ok := m[k]; !ok || len(m) != 4 {
			t.Fatalf("JSON %s: want exactly the keys t, m, p, s", b)
		}
	}
	var q Argon2Params
	if err := json.Unmarshal(b, &q); err != nil {
		t.Fatal(err)
	}
	if q.Time != p.Time || q.MemoryKiB != p.MemoryKiB || q.Threads != p.Threads || !bytes.Equal(q.Salt, p.Salt) {
		t.Fatalf("JSON round trip: %+v != %+v", q, p)
	}
}

func TestTokenKEK(t *testing.T) {
	tok := []byte(NormalizeToken(NewToken(20)))
	salt := testBytes(8, 16)
	k := TokenKEK(tok, salt)
	if k != hkdfRef(t, tok, salt, "kreide/v1/token-kek") {
		t.Fatal("TokenKEK is not HKDF-SHA256 with the documented label")
	}
	if TokenKEK(tok, salt) != k {
		t.Fatal("TokenKEK is not deterministic")
	}
	if TokenKEK(tok, testBytes(9, 16)) == k {
		t.Fatal("salt ignored")
	}
	if TokenKEK(append(bytes.Clone(tok), 'a'), salt) == k {
		t.Fatal("token ignored")
	}
	if TokenKEK(tok, salt) == cheapArgon2(salt).DeriveKEK(tok) {
		t.Fatal("token KEK equals password KEK")
	}
}
