package store

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzParseFilePath: a WebDAV path that the store accepts names only
// proper names inside the account's tree: no dot segments (also after up
// to four rounds of percent-decoding, as validFileName checks), no slash, NUL or control character inside a name, not
// deeper than MaxFileDepth; joining the names parses to the same path.
func FuzzParseFilePath(f *testing.F) {
	for _, s := range []string{"a/b/c", "/", "", "a//b/", "..", "a/%2e%2e/b", "%252e%252e", "%2e%2e%2fx", "ok name.txt",
		"Ben Secret Folder/ben.txt", "a\x00b", "\xff", "%", "x/" + strings.Repeat("d/", 80)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		fp, err := parseFilePath(p)
		if err != nil {
			return
		}
		if len(fp) > MaxFileDepth {
			t.Fatalf("%q: %d names, deeper than %d", p, len(fp), MaxFileDepth)
		}
		for _, name := range fp {
			if name == "" || strings.ContainsAny(name, "/\x00") {
				t.Fatalf("%q gives the name %q", p, name)
			}
			d := name
			for range 4 {
				if d == "." || d == ".." {
					t.Fatalf("%q gives the name %q, a dot segment once decoded", p, name)
				}
				u, err := url.PathUnescape(d)
				if err != nil || u == d {
					break
				}
				if strings.ContainsAny(u, "/\x00") {
					t.Fatalf("%q gives the name %q, which decodes to a slash or NUL", p, name)
				}
				d = u
			}
			if d == "." || d == ".." {
				t.Fatalf("%q gives the name %q, a dot segment once decoded", p, name)
			}
		}
		again, err := parseFilePath(strings.Join(fp, "/"))
		if err != nil || strings.Join(again, "/") != strings.Join(fp, "/") {
			t.Fatalf("%q: names %q do not parse back (%v)", p, fp, err)
		}
	})
}

// FuzzNormalizeAddress: a normalized address is lower case, has one @ with
// something on each side, and normalizes to itself.
func FuzzNormalizeAddress(f *testing.F) {
	for _, s := range []string{"Anna@School.Example", " a@b ", "a@@b", "@b", "a@", "a b@c", "\"a\"@b", "ü@例え.jp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		a, err := NormalizeAddress(in)
		if err != nil {
			return
		}
		if strings.Count(a, "@") != 1 || strings.HasPrefix(a, "@") || strings.HasSuffix(a, "@") || a != strings.ToLower(a) {
			t.Fatalf("NormalizeAddress(%q) = %q", in, a)
		}
		if b, err := NormalizeAddress(a); err != nil || b != a {
			t.Fatalf("NormalizeAddress(%q) = %q, again %q %v", in, a, b, err)
		}
	})
}
