package plugin

import (
	"fmt"

	"github.com/remocal/kubectl-remocal/pkg/httpfilter"
	"github.com/remocal/kubectl-remocal/pkg/wire"
	"github.com/remocal/kubectl-remocal/plugin/internal/configfile"
)

// The HTTP filter flags of exec --steal. Each flag given adds tests that a request must all
// pass: --http-header and --http-path as always, --http-method, each --http-query, and
// --http-filter for what needs all-of or any-of. --http-header and --http-path travel in their
// own fields of the subscription, which every sidecar reads; the others in a filter tree,
// which only a sidecar that offers wire.FeatureHTTPFilterTree reads.

// filterFlag names the first HTTP filter flag given, or "" when there is none.
func (o *layerOptions) filterFlag() string {
	switch {
	case o.HTTPHeader != "":
		return "--http-header"
	case o.HTTPPath != "":
		return "--http-path"
	case o.HTTPMethod != "":
		return "--http-method"
	case len(o.HTTPQuery) > 0:
		return "--http-query"
	case o.HTTPFilter != "":
		return "--http-filter"
	}
	return ""
}

// filterTree is the filter tree of the flags other than --http-header and --http-path: nil when
// there are none, the one filter when there is one, their all-of otherwise. Each part is
// checked as the sidecar will check it, so that a mistake is one line before anything is
// attached; the error names the flag at fault.
func (o *layerOptions) filterTree() (*wire.HTTPFilter, error) {
	var parts []wire.HTTPFilter
	if o.HTTPMethod != "" {
		parts = append(parts, wire.HTTPFilter{Op: wire.FilterMethod, Arg: o.HTTPMethod})
	}
	for _, q := range o.HTTPQuery {
		parts = append(parts, wire.HTTPFilter{Op: wire.FilterQuery, Arg: q})
	}
	for _, part := range parts {
		if _, err := httpfilter.Compile(part); err != nil {
			return nil, fmt.Errorf("--http-%s: %w", part.Op, err)
		}
	}
	if o.HTTPFilter != "" {
		f, err := configfile.ParseFilter(o.HTTPFilter)
		if err == nil {
			_, err = httpfilter.Compile(f)
		}
		if err != nil {
			return nil, fmt.Errorf("--http-filter %s: %w", o.HTTPFilter, err)
		}
		parts = append(parts, f)
	}
	var tree wire.HTTPFilter
	switch len(parts) {
	case 0:
		return nil, nil
	case 1:
		tree = parts[0]
	default:
		tree = wire.HTTPFilter{Op: wire.FilterAllOf, Sub: parts}
	}
	// Each part is within the bounds; together they may not be.
	if _, err := httpfilter.Compile(tree); err != nil {
		return nil, fmt.Errorf("the HTTP filter flags together: %w", err)
	}
	return &tree, nil
}

// validateFilter checks that the filter flags parse.
func (o *layerOptions) validateFilter() error {
	if o.HTTPHeader != "" {
		if _, _, err := httpfilter.ParseHeader(o.HTTPHeader); err != nil {
			return fmt.Errorf("--http-header: %w", err)
		}
	}
	if o.HTTPPath != "" {
		if _, err := httpfilter.ParsePath(o.HTTPPath); err != nil {
			return fmt.Errorf("--http-path: %w", err)
		}
	}
	for _, f := range []struct{ name, value string }{{"--http-header", o.HTTPHeader}, {"--http-path", o.HTTPPath}} {
		if len(f.value) > wire.MaxFilterLen {
			return fmt.Errorf("%s: %d bytes, more than %d", f.name, len(f.value), wire.MaxFilterLen)
		}
	}
	_, err := o.filterTree()
	return err
}
