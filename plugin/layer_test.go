package plugin

import (
	"strings"
	"testing"
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
	if got := (&layerOptions{}).subscription(); got.Mode != "mirror" || got.Header != "" {
		t.Errorf("default subscription %+v, want a mirror", got)
	}
	got := (&layerOptions{Steal: true, HTTPHeader: "X-Dev: a", HTTPPath: "^/x"}).subscription()
	if got.Mode != "steal" || got.Header != "X-Dev: a" || got.Path != "^/x" {
		t.Errorf("filtered steal %+v", got)
	}
}
