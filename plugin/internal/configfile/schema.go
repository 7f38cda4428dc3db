package configfile

import (
	"cmp"
	"reflect"
	"strings"

	"github.com/spf13/pflag"
)

// durationPattern is what time.ParseDuration reads, for editors: "90s", "1h30m", "1.5h", "0".
const durationPattern = `^[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`

// The filter schema, which refers to itself: filters nest.
const (
	filterDef = "http-filter"
	filterRef = "#/$defs/" + filterDef
)

// FlagLookup finds the flag name of the command cmd, or of any command that takes it when cmd
// is ""; nil when there is none.
type FlagLookup func(cmd, name string) *pflag.Flag

// Schema returns the JSON Schema (draft 2020-12) of the configuration file. It is made from
// the same key descriptions as the decoder (Keys), so that it takes what the decoder takes: no
// unknown key, no null, a number only where a number is read. A key's description is its
// flag's usage, found by lookup, so that what a key does is written once.
func Schema(lookup FlagLookup) map[string]any {
	s := objectSchema(fileKeys, "", lookup)
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["$defs"] = map[string]any{filterDef: filterSchema(filterRef)}
	s["title"] = "kubectl remocal configuration file (" + FileName + ")"
	s["description"] = "Default flag values and target of kubectl remocal exec and port-forward; flags on the command line override them."
	return s
}

// objectSchema is the schema of keys, of the command cmd ("" for all).
func objectSchema(keys []Key, cmd string, lookup FlagLookup) map[string]any {
	props := map[string]any{}
	for _, k := range keys {
		props[k.Name] = keySchema(k, cmp.Or(k.Cmd, cmd), lookup)
	}
	return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
}

func keySchema(k Key, cmd string, lookup FlagLookup) map[string]any {
	var s map[string]any
	switch {
	case k.typ == filterType:
		s = map[string]any{"$ref": filterRef}
	case k.Section != nil:
		s = objectSchema(k.Section, cmd, lookup)
	case k.typ == durationType:
		s = map[string]any{"type": "string", "pattern": durationPattern}
	case k.typ.Kind() == reflect.Bool:
		s = map[string]any{"type": "boolean"}
	case k.typ.Kind() == reflect.String:
		s = scalarSchema(k)
	case k.typ.Kind() == reflect.Slice:
		s = map[string]any{"type": "array", "items": scalarSchema(k)}
	case k.typ.Kind() == reflect.Map:
		s = map[string]any{"type": "object", "additionalProperties": scalarSchema(k)}
	}
	s["description"] = Description(k, cmd, lookup)
	if k.Cmd != "" {
		s["description"] = k.Cmd + ": " + s["description"].(string)
	}
	return s
}

// Description says what k, a key of the command cmd ("" for all), does: the usage of the flag
// it sets, with the flag's name, or its doc tag when it sets no flag.
func Description(k Key, cmd string, lookup FlagLookup) string {
	if k.Flag == "" {
		return k.Doc
	}
	f := lookup(cmd, k.Flag)
	if f == nil {
		return k.Doc // a key without its flag fails the plugin's tests
	}
	// A list is a YAML list in the file, not a repeated flag.
	usage := strings.ReplaceAll(f.Usage, " (repeatable)", "")
	name := "--" + f.Name
	if f.Shorthand != "" {
		name = "-" + f.Shorthand + ", " + name
	}
	return strings.ToUpper(usage[:1]) + usage[1:] + " (" + name + ")."
}

// scalarSchema is the schema of a string value, or of each item of a list or mapping: see the
// scalar and enum tags of File.
func scalarSchema(k Key) map[string]any {
	switch {
	case k.Enum != nil:
		return map[string]any{"type": "string", "enum": k.Enum}
	case k.Scalar == "int":
		return map[string]any{"type": []string{"string", "integer"}}
	case k.Scalar == "any":
		return map[string]any{"type": []string{"string", "number", "boolean"}}
	}
	return map[string]any{"type": "string"}
}
