package plugin

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/remocal/kubectl-remocal/plugin/internal/configfile"
)

// schemaOf runs "config schema" and parses what it prints.
func schemaOf(t *testing.T) map[string]any {
	t.Helper()
	stdout, stderr, err := execute(t, "config", "schema")
	if err != nil || stderr != "" {
		t.Fatalf("config schema: %v, stderr %q", err, stderr)
	}
	var s map[string]any
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("config schema printed no JSON: %v\n%s", err, stdout)
	}
	return s
}

func TestConfigSchemaCoversEveryKey(t *testing.T) {
	s := schemaOf(t)
	if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v", s["$schema"])
	}
	lookup := flagOf(NewCmdRemocal(genericiooptions.NewTestIOStreamsDiscard()))
	var check func(path string, obj map[string]any, keys []configfile.Key, cmd string)
	check = func(path string, obj map[string]any, keys []configfile.Key, cmd string) {
		if obj["type"] != "object" || obj["additionalProperties"] != false {
			t.Errorf("%s: type %v, additionalProperties %v; want a closed object", path, obj["type"], obj["additionalProperties"])
		}
		props, _ := obj["properties"].(map[string]any)
		var names []string
		for _, k := range keys {
			names = append(names, k.Name)
			p, ok := props[k.Name].(map[string]any)
			if !ok {
				t.Errorf("%s%s: not in the schema", path, k.Name)
				continue
			}
			// The description is the flag's usage, or the doc of a key that is no flag.
			want := configfile.Description(k, cmp.Or(k.Cmd, cmd), lookup)
			if k.Cmd != "" {
				want = k.Cmd + ": " + want
			}
			if d, _ := p["description"].(string); d != want || strings.HasSuffix(d, ": ") {
				t.Errorf("%s%s: description %q, want %q", path, k.Name, d, want)
			}
			if k.Section != nil {
				check(path+k.Name+".", p, k.Section, k.Cmd)
			}
		}
		for name := range props {
			if !slices.Contains(names, name) {
				t.Errorf("%s%s: in the schema, not a key", path, name)
			}
		}
	}
	check("", s, configfile.Keys(), "")
}

// What the schema allows, the decoder takes, key by key; and a null, which the schema never
// allows, the decoder refuses.
func TestConfigSchemaAgreesWithTheDecoder(t *testing.T) {
	schema := schemaOf(t)
	props := schema["properties"].(map[string]any)
	sample := sampler{t: t, defs: schema["$defs"].(map[string]any)}
	for name, p := range props {
		t.Run(name, func(t *testing.T) {
			values := sample.of(p.(map[string]any), 0)
			if len(values) == 0 {
				t.Fatal("no sample value")
			}
			for _, v := range values {
				file := fmt.Sprintf("%s: %s\n", name, v)
				if _, err := configfile.Decode("f.yaml", []byte(file)); err != nil {
					t.Errorf("the schema allows\n%sbut the decoder says %v", file, err)
				}
			}
			if _, err := configfile.Decode("f.yaml", []byte(name+": null\n")); err == nil {
				t.Errorf("the decoder takes %s: null", name)
			}
		})
	}
}

// sampler makes sample values of a schema whose $refs point into defs.
type sampler struct {
	t    *testing.T
	defs map[string]any
}

// maxSampleDepth bounds how deep a sample follows a schema that refers to itself.
const maxSampleDepth = 3

// of returns YAML flow values that the schema s allows, one for each type it lists; a list or
// a mapping holds one item of each type its items may have. Below maxSampleDepth a $ref has no
// sample, and what would hold only such samples (a property, a list's items) is left out.
func (sm sampler) of(s map[string]any, depth int) []string {
	t := sm.t
	if ref, ok := s["$ref"].(string); ok {
		name, ok := strings.CutPrefix(ref, "#/$defs/")
		def, found := sm.defs[name].(map[string]any)
		if !ok || !found {
			t.Fatalf("$ref %q names no $defs", ref)
		}
		if depth >= maxSampleDepth {
			return nil
		}
		return sm.of(def, depth+1)
	}
	if enum, ok := s["enum"].([]any); ok {
		var values []string
		for _, e := range enum {
			values = append(values, e.(string))
		}
		return values
	}
	if props, ok := s["properties"].(map[string]any); ok {
		var kv []string
		for name, p := range props {
			if v := sm.of(p.(map[string]any), depth); len(v) > 0 {
				kv = append(kv, name+": "+v[0])
			}
		}
		return []string{"{" + strings.Join(kv, ", ") + "}"}
	}
	var types []string
	switch typ := s["type"].(type) {
	case string:
		types = []string{typ}
	case []any:
		for _, x := range typ {
			types = append(types, x.(string))
		}
	}
	var values []string
	for _, typ := range types {
		switch typ {
		case "boolean":
			values = append(values, "true")
		case "integer", "number":
			values = append(values, "8080")
		case "string":
			values = append(values, `"90s"`) // a string, and a duration where one is wanted
		case "array":
			if items := sm.of(s["items"].(map[string]any), depth); len(items) > 0 {
				values = append(values, "["+strings.Join(items, ", ")+"]")
			}
		case "object":
			var kv []string
			for i, v := range sm.of(s["additionalProperties"].(map[string]any), depth) {
				kv = append(kv, fmt.Sprintf("V%d: %s", i, v))
			}
			values = append(values, "{"+strings.Join(kv, ", ")+"}")
		default:
			t.Fatalf("schema type %q", typ)
		}
	}
	return values
}

// The schema of an HTTP filter lists the keys the decoder takes in a filter, each of which it
// takes alone, nested in all-of and any-of too; an empty filter it refuses, as the decoder does.
func TestConfigSchemaOfTheFilter(t *testing.T) {
	schema := schemaOf(t)
	if ref := schema["properties"].(map[string]any)["http-filter"].(map[string]any)["$ref"]; ref != "#/$defs/http-filter" {
		t.Fatalf("http-filter refers to %v", ref)
	}
	def := schema["$defs"].(map[string]any)["http-filter"].(map[string]any)
	if def["minProperties"] != float64(1) || def["additionalProperties"] != false {
		t.Errorf("a filter: minProperties %v, additionalProperties %v; want 1, false", def["minProperties"], def["additionalProperties"])
	}
	sample := sampler{t: t, defs: schema["$defs"].(map[string]any)}
	props := def["properties"].(map[string]any)
	var names []string
	for name, p := range props {
		names = append(names, name)
		for _, v := range sample.of(p.(map[string]any), 1) {
			for _, file := range []string{
				fmt.Sprintf("http-filter: {%s: %s}\n", name, v),
				fmt.Sprintf("http-filter: {any-of: [{all-of: [{%s: %s}]}]}\n", name, v),
			} {
				if _, err := configfile.Decode("f.yaml", []byte(file)); err != nil {
					t.Errorf("the schema allows\n%sbut the decoder says %v", file, err)
				}
			}
		}
	}
	slices.Sort(names)
	if want := "all-of any-of header method path query"; strings.Join(names, " ") != want {
		t.Errorf("a filter's keys: %v, want %s", names, want)
	}
	if _, err := configfile.Decode("f.yaml", []byte("http-filter: {}\n")); err == nil {
		t.Error("the decoder takes an empty filter")
	}
}
