package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Error is one problem with a configuration, in words an administrator can act on.
type Error struct {
	File string // config file name; "" when the Config did not come from a file
	Line int    // 1-based line of the key in File; 0 when unknown (e.g. the value is a default)
	Key  string // dotted key, e.g. "listen.imap"; "" for a syntax error
	Msg  string // one line, naming the key
}

// Error formats e as "file:line: message".
func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return e.File + ": " + e.Msg
	}
	return e.Msg
}

// Load reads the config file at path: it starts from Default(), overlays the file and validates the
// result. All problems found are returned together, one line each (see Error).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load on data; name is the file name used in messages.
//
// One default depends on the file: when the file does not set demo_account and the default demo account
// is not in its domains, there is no demo account.
func Parse(name string, data []byte) (*Config, error) {
	if err := checkSizeKinds(name, data); err != nil {
		return nil, err
	}
	c := Default()
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, decodeError(name, data, err)
	}
	c.normalize()
	lines := keyLines(data)
	// The demo account belongs to the demo: a file that serves other domains and does not mention it does
	// not get it (rather than an error about a setting the admin never wrote).
	if lines["demo_account"] == 0 && c.DemoAccount != "" && !c.HasDomain(c.DemoAccount[strings.LastIndexByte(c.DemoAccount, '@')+1:]) {
		c.DemoAccount = ""
	}
	problems := c.problems()
	if len(problems) == 0 {
		return c, nil
	}
	errs := make([]error, len(problems))
	for i, p := range problems {
		p.File = name
		p.Line = lines[p.Key]
		errs[i] = p
	}
	return nil, joinErrors(errs)
}

// checkSizeKinds rejects sizes written as something other than a string or an integer. The decoder would
// give the text of a float or a boolean to Size.UnmarshalText, and report its error without a position.
func checkSizeKinds(name string, data []byte) error {
	keys := knownKeys()
	var errs []error
	for _, k := range scanKeys(data) {
		key := joinKey(k.parts)
		if keys[key] == sizeType && k.kind != unstable.String && k.kind != unstable.Integer {
			errs = append(errs, &Error{File: name, Line: k.line, Key: key, Msg: fmt.Sprintf(
				"%s: wrong type: want %s, got %s", key, describeType(sizeType), withArticle("TOML "+kindName(k.kind)))})
		}
	}
	return joinErrors(errs)
}

// kindName names a kind of TOML value as the decoder's messages do.
func kindName(k unstable.Kind) string {
	switch k {
	case unstable.Table:
		return "table"
	case unstable.InlineTable:
		return "inline table"
	case unstable.ArrayTable:
		return "array table"
	case unstable.Bool:
		return "boolean"
	case unstable.LocalDate:
		return "local date"
	case unstable.LocalTime:
		return "local time"
	case unstable.LocalDateTime:
		return "local datetime"
	case unstable.DateTime:
		return "datetime"
	}
	return strings.ToLower(k.String())
}

// joinErrors returns nil, the only error, or all of them joined (one per line).
func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}

// decodeError turns an error of the TOML decoder into *Error values naming the file, line and key.
func decodeError(name string, data []byte, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		errs := make([]error, 0, len(strict.Errors))
		for i := range strict.Errors {
			de := &strict.Errors[i]
			line, col := de.Position()
			key := joinKey(fullKey(data, line, col, de.Key()))
			what := "key"
			if _, ok := lookupKey(key); !ok && strings.Contains(de.Error(), "table") {
				what = "table"
			}
			msg := fmt.Sprintf("unknown %s %q", what, key)
			if s := suggestKey(key); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			errs = append(errs, &Error{File: name, Line: line, Key: key, Msg: msg})
		}
		return joinErrors(errs)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		key := joinKey(de.Key())
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		switch {
		case wrongTypeRE.MatchString(msg):
			got := wrongTypeRE.FindStringSubmatch(msg)[1]
			want := "another type"
			if t, ok := lookupKey(key); ok {
				want = describeType(t)
			}
			msg = fmt.Sprintf("%s: wrong type: want %s, got %s", key, want, withArticle("TOML "+got))
		case key == "":
			msg = "syntax error: " + msg
		case !strings.Contains(msg, key):
			msg = key + ": " + msg
		}
		return &Error{File: name, Line: line, Key: key, Msg: msg}
	}
	return &Error{File: name, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
}

var wrongTypeRE = regexp.MustCompile(`^cannot decode TOML (.+?) into `)

// withArticle puts "a" or "an" before s.
func withArticle(s string) string {
	if s != "" && strings.ContainsRune("aeiouAEIOU", rune(s[0])) {
		return "an " + s
	}
	return "a " + s
}

// joinKey writes a TOML key path in dotted form, quoting parts that are not bare keys.
func joinKey(parts []string) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('.')
		}
		if isBareKey(p) {
			b.WriteString(p)
		} else {
			b.WriteString(quote(p))
		}
	}
	return b.String()
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

var sizeType = reflect.TypeFor[Size]()

// knownKeys lists every key of Config in dotted form with its Go type, tables included.
func knownKeys() map[string]reflect.Type {
	keys := map[string]reflect.Type{}
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if name == "" || name == "-" {
				continue
			}
			key := prefix + name
			keys[key] = f.Type
			if f.Type.Kind() == reflect.Struct {
				walk(key+".", f.Type)
			}
		}
	}
	walk("", reflect.TypeFor[Config]())
	return keys
}

// lookupKey returns the Go type of a dotted key of Config.
func lookupKey(key string) (reflect.Type, bool) {
	t, ok := knownKeys()[key]
	return t, ok
}

// describeType says in words what a value of type t looks like in TOML.
func describeType(t reflect.Type) string {
	switch {
	case t == sizeType:
		return `a size such as "50 MiB"`
	case t.Kind() == reflect.String:
		return `a string in double quotes`
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Int, t.Kind() == reflect.Int64:
		return "a whole number"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return `a list of strings such as ["a", "b"]`
	case t.Kind() == reflect.Struct:
		return "a table"
	}
	return t.String()
}

// suggestKey returns the known key closest to an unknown one, or "".
func suggestKey(unknown string) string {
	keys := knownKeys()
	last := unknown[strings.LastIndexByte(unknown, '.')+1:]
	best, bestDist := "", 1<<30
	for k := range keys {
		d := editDistance(unknown, k)
		// The right name in the wrong table ("imap" for "listen.imap") counts as close.
		if k[strings.LastIndexByte(k, '.')+1:] == last {
			d = min(d, 1)
		}
		if d < bestDist || d == bestDist && k < best {
			best, bestDist = k, d
		}
	}
	if bestDist <= max(2, len(unknown)/4) {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// keyPos is where a key (or table header) is in a TOML document.
type keyPos struct {
	parts     []string      // the full path, table prefix included
	line, col int           // 1-based, of the key's first part; col counts bytes
	kind      unstable.Kind // of the value; Table or ArrayTable for a table header
}

// scanKeys lists the keys and table headers of a TOML document that parses, in document order. On a
// syntax error it returns what it found before.
func scanKeys(data []byte) []keyPos {
	var out []keyPos
	var p unstable.Parser
	p.Reset(data)
	pos := func(r unstable.Range) (line, col int) {
		before := data[:min(int(r.Offset), len(data))]
		return 1 + bytes.Count(before, []byte("\n")), len(before) - bytes.LastIndexByte(before, '\n')
	}
	add := func(prefix []string, n *unstable.Node, kind unstable.Kind) []string {
		parts := append([]string(nil), prefix...)
		var first unstable.Range
		it := n.Key()
		for i := 0; it.Next(); i++ {
			if i == 0 {
				first = it.Node().Raw
			}
			parts = append(parts, string(it.Node().Data))
		}
		line, col := pos(first)
		out = append(out, keyPos{parts: parts, line: line, col: col, kind: kind})
		return parts
	}
	var keyValue func(prefix []string, kv *unstable.Node)
	keyValue = func(prefix []string, kv *unstable.Node) {
		v := kv.Value()
		full := add(prefix, kv, v.Kind)
		if v.Kind == unstable.InlineTable {
			children := v.Children()
			for children.Next() {
				if c := children.Node(); c.Kind == unstable.KeyValue {
					keyValue(full, c)
				}
			}
		}
	}
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = add(nil, e, e.Kind)
		case unstable.KeyValue:
			keyValue(table, e)
		}
	}
	return out
}

// keyLines maps each dotted key and table of a TOML document to the line where it is first set.
// A dotted key also sets its parent tables: "listen.imap = …" sets "listen".
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	for _, k := range scanKeys(data) {
		for i := range k.parts {
			key := joinKey(k.parts[:i+1])
			if lines[key] == 0 {
				lines[key] = k.line
			}
		}
	}
	return lines
}

// fullKey returns the full path of the key at line and col of data. The decoder's errors give only the
// last parts for keys inside inline tables.
func fullKey(data []byte, line, col int, fallback []string) []string {
	for _, k := range scanKeys(data) {
		if k.line == line && k.col == col {
			return k.parts
		}
	}
	return fallback
}
