package plugin

import (
	"encoding/json"
	"fmt"
	"io"

	"sigs.k8s.io/yaml"
)

// printObject writes v as `-o json` or `-o yaml` asks, as kubectl prints objects; what names v
// in errors. Other formats are the caller's (its table), or an error.
func printObject(w io.Writer, v any, format, what string) error {
	var b []byte
	var err error
	switch format {
	case "json":
		if b, err = json.MarshalIndent(v, "", "  "); err == nil {
			b = append(b, '\n')
		}
	case "yaml":
		b, err = yaml.Marshal(v)
	default:
		return fmt.Errorf("unsupported output format %q", format)
	}
	if err != nil {
		return fmt.Errorf("encode %s as %s: %w", what, format, err)
	}
	_, err = w.Write(b)
	return err
}
