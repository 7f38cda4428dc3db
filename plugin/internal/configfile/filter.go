package configfile

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// The HTTP filter tree as users write it, in the file's http-filter key and in exec's
// --http-filter flag alike: a YAML mapping per filter, whose keys are the tests the request
// must all pass.
//
//	header: "Name: regex"      a header field's value matches (an empty regex: it is present)
//	path: regex                the path matches
//	method: GET,HEAD           one of the methods ([GET, HEAD] too)
//	query: name=regex          a query parameter's decoded value matches
//	all-of: [filter, ...]      each filter matches
//	any-of: [filter, ...]      one of the filters matches
//
// The tree is checked here only for its shape; what the leaves say (names, regexes) is the
// plugin's to validate, with pkg/httpfilter, as for every flag.

// filterType is the type of the key that holds a filter tree.
var filterType = reflect.TypeFor[*wire.HTTPFilter]()

// filterOps are a filter mapping's keys, in the order the schema lists them.
var filterOps = []wire.FilterOp{wire.FilterHeader, wire.FilterPath, wire.FilterMethod, wire.FilterQuery, wire.FilterAllOf, wire.FilterAnyOf}

func filterOpNamed(name string) (wire.FilterOp, bool) {
	i := slices.IndexFunc(filterOps, func(op wire.FilterOp) bool { return op.String() == name })
	if i < 0 {
		return 0, false
	}
	return filterOps[i], true
}

// ParseFilter parses the value of --http-filter, a filter in YAML, mostly written in flow
// style on one line: '{any-of: [{header: "X-Dev: alice"}, {query: dev=alice}]}'. JSON is
// YAML too.
func ParseFilter(s string) (wire.HTTPFilter, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(s), &doc); err != nil {
		return wire.HTTPFilter{}, fmt.Errorf("not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return wire.HTTPFilter{}, errors.New("empty: want a mapping such as '{method: GET, path: ^/api/}'")
	}
	d := decoder{lines: map[string]int{}}
	f, err := d.filter("http-filter", doc.Content[0], 1)
	if e := (*Error)(nil); errors.As(err, &e) {
		return wire.HTTPFilter{}, errors.New(e.Msg) // one line: the flag's value has no file
	}
	return f, err
}

// filter decodes node, a filter mapping at path ("http-filter.any-of[1]"), depth levels down.
// A mapping of several keys is the all-of of them, in the order written.
func (d *decoder) filter(path string, node *yaml.Node, depth int) (wire.HTTPFilter, error) {
	node = resolve(node)
	if depth > wire.MaxFilterDepth {
		return wire.HTTPFilter{}, d.errorf(node, "%s: filters nested deeper than %d", path, wire.MaxFilterDepth)
	}
	if node.Kind != yaml.MappingNode || len(node.Content) == 0 {
		return wire.HTTPFilter{}, d.errorf(node, "%s: want a mapping of %s, not %s", path, filterKeyList(), describe(node))
	}
	var parts []wire.HTTPFilter
	for i := 0; i+1 < len(node.Content); i += 2 {
		kn, vn := node.Content[i], resolve(node.Content[i+1])
		op, ok := filterOpNamed(kn.Value)
		if kn.Kind != yaml.ScalarNode || !ok {
			return wire.HTTPFilter{}, d.errorf(kn, "%s", unknownFilterKey(path, kn))
		}
		if slices.ContainsFunc(parts, func(f wire.HTTPFilter) bool { return f.Op == op }) {
			return wire.HTTPFilter{}, d.errorf(kn, "%s: %s is set twice (for two, write all-of: [{%s: ...}, {%s: ...}])", path, op, op, op)
		}
		part, err := d.filterPart(path+"."+op.String(), op, vn, depth)
		if err != nil {
			return wire.HTTPFilter{}, err
		}
		parts = append(parts, part)
	}
	if len(parts) == 1 {
		return parts[0], nil
	}
	return wire.HTTPFilter{Op: wire.FilterAllOf, Sub: parts}, nil
}

// filterPart decodes the value node of the key op at path.
func (d *decoder) filterPart(path string, op wire.FilterOp, node *yaml.Node, depth int) (wire.HTTPFilter, error) {
	switch {
	case op == wire.FilterMethod && node.Kind == yaml.SequenceNode:
		var methods []string
		for _, item := range node.Content {
			m, err := d.scalar(path, resolve(item), "", "a list of methods such as [GET, HEAD]")
			if err != nil {
				return wire.HTTPFilter{}, err
			}
			methods = append(methods, m)
		}
		if len(methods) == 0 {
			return wire.HTTPFilter{}, d.errorf(node, "%s: want a method or a list of methods, not an empty list", path)
		}
		return wire.HTTPFilter{Op: op, Arg: strings.Join(methods, ",")}, nil
	case op.Leaf():
		s, err := d.scalar(path, node, "", "a string")
		return wire.HTTPFilter{Op: op, Arg: s}, err
	}
	if node.Kind != yaml.SequenceNode || len(node.Content) == 0 {
		what := describe(node)
		if node.Kind == yaml.SequenceNode {
			what = "an empty list"
		}
		return wire.HTTPFilter{}, d.errorf(node, "%s: want a list of filters such as [{method: GET}, {path: ^/api/}], not %s", path, what)
	}
	f := wire.HTTPFilter{Op: op}
	for i, item := range node.Content {
		sub, err := d.filter(fmt.Sprintf("%s[%d]", path, i), item, depth+1)
		if err != nil {
			return wire.HTTPFilter{}, err
		}
		f.Sub = append(f.Sub, sub)
	}
	return f, nil
}

func filterKeyList() string {
	names := make([]string, len(filterOps))
	for i, op := range filterOps {
		names[i] = op.String()
	}
	return strings.Join(names, ", ")
}

// unknownFilterKey says what is wrong with the key kn of a filter mapping.
func unknownFilterKey(path string, kn *yaml.Node) string {
	if kn.Kind != yaml.ScalarNode {
		return fmt.Sprintf("%s: a key must be one of %s, not %s", path, filterKeyList(), describe(kn))
	}
	hint := ""
	if s := closest(kn.Value, strings.Split(filterKeyList(), ", ")); s != "" {
		hint = fmt.Sprintf(" (did you mean %q?)", s)
	}
	return fmt.Sprintf("%s: unknown key %q%s; valid keys: %s", path, kn.Value, hint, filterKeyList())
}

// filterSchema is the JSON Schema of a filter mapping, which refers to itself by ref.
func filterSchema(ref string) map[string]any {
	list := func(what string) map[string]any {
		return map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"$ref": ref}, "description": what}
	}
	str := func(what string) map[string]any { return map[string]any{"type": "string", "description": what} }
	return map[string]any{
		"type":                 "object",
		"minProperties":        1,
		"additionalProperties": false,
		"description":          "An HTTP filter: the requests that pass each of its tests.",
		"properties": map[string]any{
			"header": str(`A header field's value matches the regex, "Name: regex"; "Name:" only asks for the header.`),
			"path":   str("The path, percent-encoded as sent and without the query, matches the regex."),
			"method": map[string]any{
				"type":        []string{"string", "array"},
				"items":       map[string]any{"type": "string"},
				"minItems":    1,
				"description": `The method is one of these (case ignored): "GET,HEAD" or [GET, HEAD].`,
			},
			"query":  str(`A query parameter's decoded value matches the regex, "name=regex"; "name=" only asks for the parameter.`),
			"all-of": list("Each of these filters matches."),
			"any-of": list("One of these filters matches."),
		},
	}
}
