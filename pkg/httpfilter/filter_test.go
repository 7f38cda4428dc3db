package httpfilter

import (
	"net/textproto"
	"regexp"
	"testing"
)

func TestParseHeader(t *testing.T) {
	for in, want := range map[string]string{
		"X-Dev: ^alice$":     "X-Dev ^alice$",
		"x-dev:alice":        "X-Dev alice",
		"  x-trace-id :  a ": "X-Trace-Id a",
		"X-Dev:":             "X-Dev ",
	} {
		name, re, err := ParseHeader(in)
		if err != nil || name+" "+re.String() != want {
			t.Errorf("ParseHeader(%q) = %q, %v, %v; want %q", in, name, re, err, want)
		}
	}
	for _, in := range []string{"X-Dev", "X Dev: a", ": a", "X-Dev: ("} {
		if _, _, err := ParseHeader(in); err == nil {
			t.Errorf("ParseHeader(%q) succeeded", in)
		}
	}
}

func TestFilterMatches(t *testing.T) {
	header := textproto.MIMEHeader{"X-Dev": {"bob", "alice"}}
	for _, tc := range []struct {
		f    Filter
		path string
		want bool
	}{
		{Filter{Header: "X-Dev"}, "/", true},
		{Filter{Header: "x-dev", HeaderValue: regexp.MustCompile("^alice$")}, "/", true},
		{Filter{Header: "X-Dev", HeaderValue: regexp.MustCompile("^carol$")}, "/", false},
		{Filter{Header: "X-Other"}, "/", false},
		{Filter{Path: regexp.MustCompile("^/api/")}, "/api/x", true},
		{Filter{Header: "X-Dev", Path: regexp.MustCompile("^/api/")}, "/web", false},
	} {
		if err := tc.f.validate(); err != nil {
			t.Fatal(err)
		}
		if got := tc.f.matches(header, tc.path); got != tc.want {
			t.Errorf("%+v matches %s = %v, want %v", tc.f, tc.path, got, tc.want)
		}
	}
	for _, f := range []Filter{{}, {HeaderValue: regexp.MustCompile("a")}, {Header: "X Dev"}} {
		if f.validate() == nil {
			t.Errorf("%+v is valid", f)
		}
	}
}
