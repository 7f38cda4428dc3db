package plugin

import "reflect"

// durationPattern is what time.ParseDuration reads, for editors: "90s", "1h30m", "1.5h", "0".
const durationPattern = `^[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`

// configSchema returns the JSON Schema (draft 2020-12) of the configuration file. It is made
// from the same key descriptions as the decoder (configKeys of fileConfig), so that it takes
// what the decoder takes: no unknown key, no null, a number only where a number is read.
func configSchema() map[string]any {
	s := objectSchema(fileKeys)
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["title"] = "kubectl remocal configuration file (" + configFileName + ")"
	s["description"] = "Default flag values and target of kubectl remocal exec and port-forward; flags on the command line override them."
	return s
}

func objectSchema(keys []configKey) map[string]any {
	props := map[string]any{}
	for _, k := range keys {
		props[k.name] = keySchema(k)
	}
	return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
}

func keySchema(k configKey) map[string]any {
	var s map[string]any
	switch {
	case k.section != nil:
		s = objectSchema(k.section)
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
	s["description"] = k.doc
	if k.cmd != "" {
		s["description"] = k.cmd + ": " + k.doc
	}
	return s
}

// scalarSchema is the schema of a string value, or of each item of a list or mapping: see the
// scalar and enum tags of fileConfig.
func scalarSchema(k configKey) map[string]any {
	switch {
	case k.enum != nil:
		return map[string]any{"type": "string", "enum": k.enum}
	case k.scalar == "int":
		return map[string]any{"type": []string{"string", "integer"}}
	case k.scalar == "any":
		return map[string]any{"type": []string{"string", "number", "boolean"}}
	}
	return map[string]any{"type": "string"}
}
