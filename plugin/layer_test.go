package plugin

import (
	"strings"
	"testing"

	"github.com/remocal/kubectl-remocal/pkg/httpfilter"
	"github.com/remocal/kubectl-remocal/pkg/sidecarclient"
)

func TestValidateIncoming(t *testing.T) {
	tests := []struct {
		name string
		opts layerOptions
		want string // a part of the error, or "" for none
	}{
		{"mirror by default", layerOptions{}, ""},
		{"steal with a header and a path", layerOptions{Steal: true, HTTPHeader: "X-Dev: ^alice$", HTTPPath: "^/api/"}, ""},
		{"a header that only has to be present", layerOptions{Steal: true, HTTPHeader: "X-Dev:"}, ""},
		{"steal and no incoming", layerOptions{Steal: true, NoIncoming: true}, "contradict"},
		{"a filter without steal", layerOptions{HTTPHeader: "X-Dev: alice"}, "add --steal"},
		{"a header without a colon", layerOptions{Steal: true, HTTPHeader: "X-Dev alice"}, "--http-header"},
		{"a header name with a space", layerOptions{Steal: true, HTTPHeader: "X Dev: alice"}, "invalid header name"},
		{"a header regex that does not compile", layerOptions{Steal: true, HTTPHeader: "X-Dev: ("}, "--http-header"},
		{"a path regex that does not compile", layerOptions{Steal: true, HTTPPath: "(("}, "--http-path"},
		{"a method", layerOptions{Steal: true, HTTPMethod: "get,HEAD"}, ""},
		{"queries", layerOptions{Steal: true, HTTPQuery: []string{"dev=^alice$", "debug="}}, ""},
		{"a filter tree", layerOptions{Steal: true, HTTPFilter: `{any-of: [{header: "X-Dev: alice"}, {method: [GET, HEAD], query: dev=alice}]}`}, ""},
		{"a filter tree in JSON", layerOptions{Steal: true, HTTPFilter: `{"all-of":[{"path":"^/api/"},{"method":"POST"}]}`}, ""},
		{"every filter flag", layerOptions{Steal: true, HTTPHeader: "X-Dev:", HTTPPath: "^/", HTTPMethod: "GET", HTTPQuery: []string{"a="}, HTTPFilter: "{path: x}"}, ""},
		{"a method without steal", layerOptions{HTTPMethod: "GET"}, "--http-method chooses which requests to steal: add --steal"},
		{"a query without steal", layerOptions{HTTPQuery: []string{"a=b"}}, "--http-query chooses"},
		{"a method with a space", layerOptions{Steal: true, HTTPMethod: "GET POST"}, `--http-method: method filter "GET POST": invalid method "GET POST"`},
		{"an empty method", layerOptions{Steal: true, HTTPMethod: "GET,"}, `invalid method ""`},
		{"a query without =", layerOptions{Steal: true, HTTPQuery: []string{"a=b", "dev"}}, `--http-query: query filter "dev": want "name=regex"`},
		{"a query regex that does not compile", layerOptions{Steal: true, HTTPQuery: []string{"dev=("}}, "--http-query"},
		{"a filter that is no YAML", layerOptions{Steal: true, HTTPFilter: "{any-of: [}"}, "--http-filter {any-of: [}: not valid YAML"},
		{"a filter with an unknown key", layerOptions{Steal: true, HTTPFilter: "{any-off: []}"}, `unknown key "any-off" (did you mean "any-of"?)`},
		{"a filter with an empty any-of", layerOptions{Steal: true, HTTPFilter: "{any-of: []}"}, "http-filter.any-of: want a list of filters"},
		{"a filter with a bad leaf", layerOptions{Steal: true, HTTPFilter: "{any-of: [{path: x}, {query: (}]}"}, `any-of[1]: query filter "("`},
		{"a filter that is a list", layerOptions{Steal: true, HTTPFilter: "[{path: x}]"}, "http-filter: want a mapping of header, path, method, query, all-of, any-of, not a list"},
		{"a filter with a key twice", layerOptions{Steal: true, HTTPFilter: "{path: x, path: y}"}, "path"},
		{"a filter too deep", layerOptions{Steal: true, HTTPFilter: strings.Repeat("{all-of: [", 9) + "{path: x}" + strings.Repeat("]}", 9)}, "deeper than 8"},
		{"a header too long", layerOptions{Steal: true, HTTPHeader: "X-Dev: " + strings.Repeat("a", 1024)}, "--http-header: 1031 bytes, more than 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.validateIncoming()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestSubscriptionOfTheFlags(t *testing.T) {
	tests := []struct {
		name string
		opts layerOptions
		want sidecarclient.Subscription
		tree string // the filter tree as httpfilter.Format writes it
	}{
		{"mirror by default", layerOptions{}, sidecarclient.Subscription{Mode: "mirror"}, ""},
		{"steal", layerOptions{Steal: true}, sidecarclient.Subscription{Mode: "steal"}, ""},
		// What every sidecar reads stays in the fields it reads.
		{"header and path", layerOptions{Steal: true, HTTPHeader: "X-Dev: a", HTTPPath: "^/x"}, sidecarclient.Subscription{Mode: "steal", Header: "X-Dev: a", Path: "^/x"}, ""},
		{"a method", layerOptions{Steal: true, HTTPMethod: "GET,HEAD"}, sidecarclient.Subscription{Mode: "steal"}, `{"method":"GET,HEAD"}`},
		{"a header and a method", layerOptions{Steal: true, HTTPHeader: "X-Dev: a", HTTPMethod: "GET"}, sidecarclient.Subscription{Mode: "steal", Header: "X-Dev: a"}, `{"method":"GET"}`},
		{"the leaf flags", layerOptions{Steal: true, HTTPMethod: "POST", HTTPQuery: []string{"a=1", "b="}},
			sidecarclient.Subscription{Mode: "steal"}, `{"all-of":[{"method":"POST"},{"query":"a=1"},{"query":"b="}]}`},
		{"a filter of several keys", layerOptions{Steal: true, HTTPFilter: "{method: [get, head], path: ^/api/}"},
			sidecarclient.Subscription{Mode: "steal"}, `{"all-of":[{"method":"get,head"},{"path":"^/api/"}]}`},
		{"a filter and a method", layerOptions{Steal: true, HTTPMethod: "GET", HTTPFilter: `{any-of: [{header: "X-Dev: a"}, {query: dev=a}]}`},
			sidecarclient.Subscription{Mode: "steal"}, `{"all-of":[{"method":"GET"},{"any-of":[{"header":"X-Dev: a"},{"query":"dev=a"}]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.opts.subscription()
			if err != nil {
				t.Fatal(err)
			}
			tree := ""
			if got.Filter != nil {
				tree = httpfilter.Format(*got.Filter)
			}
			got.Filter = nil
			if got != tt.want || tree != tt.tree {
				t.Errorf("subscription %+v with filter %s, want %+v with %s", got, tree, tt.want, tt.tree)
			}
		})
	}
}
