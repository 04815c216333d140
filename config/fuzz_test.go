package config

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse checks that no input panics Parse, that every error is one line per problem naming the file,
// and that a config that parses survives WriteExample and Parse unchanged. Seeds are in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	var buf bytes.Buffer
	if err := Default().WriteExample(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.toml", data)
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a config and an error: %v", err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "f.toml:") {
					t.Fatalf("error line %q does not start with the file name; whole error:\n%v", line, err)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse returned a config that does not validate: %v", err)
		}
		var out bytes.Buffer
		if err := c.WriteExample(&out); err != nil {
			t.Fatal(err)
		}
		back, err := Parse("f.toml", out.Bytes())
		if err != nil {
			t.Fatalf("Parse(WriteExample(c)) = %v\n%s", err, out.String())
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", back, c)
		}
	})
}
