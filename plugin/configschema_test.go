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
	props := schemaOf(t)["properties"].(map[string]any)
	for name, p := range props {
		t.Run(name, func(t *testing.T) {
			for _, v := range samples(t, p.(map[string]any)) {
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

// samples returns YAML flow values that the schema s allows, one for each type it lists; a
// list or a mapping holds one item of each type its items may have.
func samples(t *testing.T, s map[string]any) []string {
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
			kv = append(kv, name+": "+samples(t, p.(map[string]any))[0])
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
			values = append(values, "["+strings.Join(samples(t, s["items"].(map[string]any)), ", ")+"]")
		case "object":
			var kv []string
			for i, v := range samples(t, s["additionalProperties"].(map[string]any)) {
				kv = append(kv, fmt.Sprintf("V%d: %s", i, v))
			}
			values = append(values, "{"+strings.Join(kv, ", ")+"}")
		default:
			t.Fatalf("schema type %q", typ)
		}
	}
	return values
}
