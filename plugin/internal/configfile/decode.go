package configfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Error is a mistake in the configuration file, at a line: it prints as FILE:LINE: MSG,
// which editors and terminals turn into a link.
type Error struct {
	File string
	Line int // 0 for the whole file
	Msg  string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Decode reads the content of a configuration file; file names it in errors.
//
// The decoder walks yaml.v3's node tree itself rather than using yaml's struct decoding: that
// one reports a wrong key or type as Go sees it ("field stael not found in type
// configfile.File", "cannot unmarshal !!str into bool"), while the user needs the key's name,
// the line and the values that would have been right.
func Decode(file string, data []byte) (*File, error) {
	cfg := &File{lines: map[string]int{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return cfg, nil // an empty file sets nothing
	case err != nil:
		return nil, syntaxError(file, err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, syntaxError(file, err)
		}
		return nil, &Error{file, next.Line, "a second YAML document (---): the file holds one"}
	}
	if len(doc.Content) == 0 || doc.Content[0].ShortTag() == "!!null" {
		return cfg, nil // only comments
	}
	d := decoder{file: file, lines: cfg.lines}
	if err := d.mapping("", doc.Content[0], reflect.ValueOf(cfg).Elem(), fileKeys); err != nil {
		return nil, err
	}
	return cfg, nil
}

// yamlLine finds the line in yaml.v3's syntax errors ("yaml: line 3: did not find expected key").
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// parserProblems are the errors of yaml.v3's parser, as opposed to its scanner. yaml.v3 v3.0.5
// numbers the parser's lines from 0 (and leaves line 0 out), the scanner's from 1: the line
// of a parser error needs one added.
var parserProblems = []string{
	"did not find expected ',' or ']'", "did not find expected ',' or '}'",
	"did not find expected '-' indicator", "did not find expected <document start>",
	"did not find expected <stream-start>", "did not find expected key",
	"did not find expected node content", "found duplicate %TAG directive",
	"found duplicate %YAML directive", "found incompatible YAML document", "found undefined tag handle",
}

func syntaxError(file string, err error) error {
	msg, line := strings.TrimPrefix(err.Error(), "yaml: "), 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = err.Error()[len(m[0]):]
	}
	if slices.Contains(parserProblems, msg) {
		line++
	}
	return &Error{file, line, "not valid YAML: " + msg}
}

type decoder struct {
	file  string
	lines map[string]int
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) error {
	return &Error{d.file, n.Line, fmt.Sprintf(format, args...)}
}

// mapping decodes node, a mapping of keys, into the struct v. prefix is the section's path
// ("" or "port-forward.").
func (d *decoder) mapping(prefix string, node *yaml.Node, v reflect.Value, keys []Key) error {
	node = resolve(node)
	if node.Kind != yaml.MappingNode {
		where := "the file"
		if prefix != "" {
			where = strings.TrimSuffix(prefix, ".")
		}
		return d.errorf(node, "%s: want a mapping of keys such as %s: ..., not %s", where, keys[0].Name, describe(node))
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		kn, vn := node.Content[i], node.Content[i+1]
		k, ok := findKey(keys, kn.Value)
		if kn.Kind != yaml.ScalarNode || !ok {
			return d.errorf(kn, "%s", unknownKey(prefix, kn, keys))
		}
		path := prefix + k.Name
		if first, dup := d.lines[path]; dup {
			return d.errorf(kn, "%s is set twice (first at line %d)", path, first)
		}
		d.lines[path] = kn.Line
		if err := d.value(path, k, resolve(vn), v.Field(k.index)); err != nil {
			return err
		}
	}
	return nil
}

func findKey(keys []Key, name string) (Key, bool) {
	i := slices.IndexFunc(keys, func(k Key) bool { return k.Name == name })
	if i < 0 {
		return Key{}, false
	}
	return keys[i], true
}

// unknownKey says what is wrong with key kn, the valid keys and the likeliest of them.
func unknownKey(prefix string, kn *yaml.Node, keys []Key) string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.Name
	}
	slices.Sort(names)
	in := ""
	if prefix != "" {
		in = " in " + strings.TrimSuffix(prefix, ".")
	}
	if kn.Kind != yaml.ScalarNode {
		return fmt.Sprintf("a key%s must be a name, not %s; valid keys: %s", in, describe(kn), strings.Join(names, ", "))
	}
	hint := ""
	if s := closest(kn.Value, names); s != "" {
		hint = fmt.Sprintf(" (did you mean %q?)", s)
	}
	return fmt.Sprintf("unknown key %q%s%s; valid keys: %s", kn.Value, in, hint, strings.Join(names, ", "))
}

// value decodes node into the field v of key k.
func (d *decoder) value(path string, k Key, node *yaml.Node, v reflect.Value) error {
	switch {
	case k.typ == filterType:
		f, err := d.filter(path, node, 1)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(&f))
	case k.Section != nil:
		v.Set(reflect.New(k.typ.Elem()))
		return d.mapping(path+".", node, v.Elem(), k.Section)
	case k.typ == durationType:
		s, err := d.scalar(path, node, "", "a duration such as 90s or 10m")
		if err != nil {
			return err
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			return d.errorf(node, "%s: want a duration such as 90s or 10m, not %q", path, s)
		}
		v.SetInt(int64(dur))
	case k.typ.Kind() == reflect.Bool:
		if node.Kind != yaml.ScalarNode || node.ShortTag() != "!!bool" {
			return d.errorf(node, "%s: want true or false, not %s", path, describe(node))
		}
		// yaml.v3 tags only true/false (any case) as booleans; yes/on stay strings, caught above.
		v.SetBool(strings.EqualFold(node.Value, "true"))
	case k.typ.Kind() == reflect.String:
		s, err := d.scalar(path, node, k.Scalar, want(k))
		if err != nil {
			return err
		}
		if k.Enum != nil && !slices.Contains(k.Enum, s) {
			return d.errorf(node, "%s: want one of %s, not %q", path, strings.Join(k.Enum, ", "), s)
		}
		v.SetString(s)
	case k.typ.Kind() == reflect.Slice:
		if node.Kind != yaml.SequenceNode {
			return d.errorf(node, "%s: want a list such as [%s], not %s", path, example(k), describe(node))
		}
		list := make([]string, 0, len(node.Content))
		for _, item := range node.Content {
			s, err := d.scalar(path, resolve(item), k.Scalar, "a list of "+wantItems(k))
			if err != nil {
				return err
			}
			list = append(list, s)
		}
		v.Set(reflect.ValueOf(list))
	case k.typ.Kind() == reflect.Map:
		if node.Kind != yaml.MappingNode {
			return d.errorf(node, "%s: want a mapping of NAME: value, not %s", path, describe(node))
		}
		m := make(map[string]string, len(node.Content)/2)
		for i := 0; i+1 < len(node.Content); i += 2 {
			kn, vn := node.Content[i], resolve(node.Content[i+1])
			name, err := d.scalar(path, kn, "", "variable names as keys")
			if err != nil {
				return err
			}
			if name == "" || strings.Contains(name, "=") {
				// It would become -e NAME=VALUE and split at the wrong "=".
				return d.errorf(kn, "%s: %q is not a variable name", path, name)
			}
			if _, dup := m[name]; dup {
				return d.errorf(kn, "%s.%s is set twice", path, name)
			}
			if m[name], err = d.scalar(path+"."+name, vn, k.Scalar, "a string, a number or true/false (\"\" for an empty value)"); err != nil {
				return err
			}
		}
		v.Set(reflect.ValueOf(m))
	}
	return nil
}

// scalar returns the text of node as written: a port is "8080", a variable's value "0x1F", as
// they would be on the command line. kinds says which YAML types besides strings it takes.
func (d *decoder) scalar(path string, node *yaml.Node, kinds, wanted string) (string, error) {
	if node.Kind == yaml.ScalarNode {
		switch tag := node.ShortTag(); {
		case tag == "!!str",
			kinds == "int" && tag == "!!int",
			kinds == "any" && tag != "!!null":
			return node.Value, nil
		case tag != "!!null" && wanted == "a string":
			// A number or boolean where a string goes: say how to write it as one.
			return "", d.errorf(node, "%s: want %s, not %s (quote it: \"%s\")", path, wanted, describe(node), node.Value)
		}
	}
	return "", d.errorf(node, "%s: want %s, not %s", path, wanted, describe(node))
}

// want names what a string key takes, for errors.
func want(k Key) string {
	switch {
	case k.Enum != nil:
		return "one of " + strings.Join(k.Enum, ", ")
	case k.Scalar == "int":
		return "a string or a number"
	}
	return "a string"
}

// wantItems names what the items of a list key are, for errors.
func wantItems(k Key) string {
	if k.Scalar == "int" {
		return "strings or numbers"
	}
	return "strings"
}

// example is an example value of a list key, for errors.
func example(k Key) string {
	if k.Scalar == "int" {
		return "8080, 9090"
	}
	return "a, b"
}

// resolve follows a YAML alias (*name) to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// describe names what a node is, for "want X, not Y".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!null":
		return "nothing"
	case "!!str":
		return strconv.Quote(n.Value)
	}
	return n.Value
}

// closest returns the name nearest to s by edit distance, when near enough to be a typo.
func closest(s string, names []string) string {
	best, bestDist := "", len(s)/2+1
	for _, n := range names {
		if d := editDistance(s, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance, counting an adjacent swap ("stael") as one edit.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
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
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
