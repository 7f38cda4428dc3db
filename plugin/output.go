package plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"k8s.io/cli-runtime/pkg/printers"
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

// printTable writes the rows fill writes, tab-separated, as aligned columns, as kubectl prints
// tables. A row whose last cells are empty does not end in their padding.
func printTable(w io.Writer, fill func(tw io.Writer)) error {
	var b bytes.Buffer
	tw := printers.GetNewTabWriter(&b)
	fill(tw)
	if err := tw.Flush(); err != nil {
		return err
	}
	for line := range strings.Lines(b.String()) {
		if _, err := fmt.Fprintln(w, strings.TrimRight(line, " \n")); err != nil {
			return err
		}
	}
	return nil
}
