package httpfilter

import (
	"net/textproto"
	"regexp"
	"strings"
	"testing"

	"github.com/remocal/kubectl-remocal/pkg/wire"
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

func TestParseMethods(t *testing.T) {
	for in, want := range map[string]string{
		"GET":             "GET",
		"get":             "GET",
		"GET, HEAD,post":  "GET HEAD POST",
		"PROPFIND":        "PROPFIND",
		" DELETE ":        "DELETE",
		"M-SEARCH,Custom": "M-SEARCH CUSTOM",
	} {
		got, err := ParseMethods(in)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("ParseMethods(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GET,", ",GET", "GET POST", "GET;POST", "GÉT"} {
		if got, err := ParseMethods(in); err == nil {
			t.Errorf("ParseMethods(%q) = %q, want an error", in, got)
		}
	}
}

func TestParseQuery(t *testing.T) {
	for in, want := range map[string]string{
		"dev=alice":   "dev alice",
		"dev=^alice$": "dev ^alice$",
		"debug=":      "debug ",
		"a b=x=y":     "a b x=y", // the name ends at the first '='
	} {
		name, re, err := ParseQuery(in)
		if err != nil || name+" "+re.String() != want {
			t.Errorf("ParseQuery(%q) = %q, %v, %v; want %q", in, name, re, err, want)
		}
	}
	for _, in := range []string{"dev", "=alice", "dev=("} {
		if _, _, err := ParseQuery(in); err == nil {
			t.Errorf("ParseQuery(%q) succeeded", in)
		}
	}
}

func TestFilterMatches(t *testing.T) {
	req := func(method, target string) *request {
		path, query, err := requestPath(method, target)
		if err != nil {
			t.Fatal(err)
		}
		return &request{method: method, header: textproto.MIMEHeader{"X-Dev": {"bob", "alice"}}, path: path, rawQuery: query}
	}
	re := regexp.MustCompile
	alice := Filter{Header: "X-Dev", HeaderValue: re("^alice$")}
	for _, tc := range []struct {
		f    Filter
		req  *request
		want bool
	}{
		{Filter{Header: "X-Dev"}, req("GET", "/"), true},
		{Filter{Header: "x-dev", HeaderValue: re("^alice$")}, req("GET", "/"), true},
		{Filter{Header: "X-Dev", HeaderValue: re("^carol$")}, req("GET", "/"), false},
		{Filter{Header: "X-Other"}, req("GET", "/"), false},
		{Filter{Path: re("^/api/")}, req("GET", "/api/x"), true},
		{Filter{Header: "X-Dev", Path: re("^/api/")}, req("GET", "/web"), false},
		{Filter{Path: re("^/api/x$")}, req("GET", "/api/x?y=1"), true},

		// Methods: any of the list, case ignored.
		{Filter{Methods: []string{"GET"}}, req("GET", "/"), true},
		{Filter{Methods: []string{"GET", "HEAD"}}, req("HEAD", "/"), true},
		{Filter{Methods: []string{"GET"}}, req("POST", "/"), false},
		{Filter{Methods: []string{"GET"}}, req("get", "/"), true},
		{Filter{Methods: []string{"get"}}, req("GET", "/"), true},
		{Filter{Methods: []string{"GET"}}, req("GETX", "/"), false},

		// Queries: decoded names and values, any value of a repeated parameter.
		{Filter{Query: "dev", QueryValue: re("^alice$")}, req("GET", "/?dev=alice"), true},
		{Filter{Query: "dev", QueryValue: re("^alice$")}, req("GET", "/?dev=bob&dev=alice"), true},
		{Filter{Query: "dev", QueryValue: re("^alice$")}, req("GET", "/?dev=bob"), false},
		{Filter{Query: "dev", QueryValue: re("^alice$")}, req("GET", "/?Dev=alice"), false},
		{Filter{Query: "dev", QueryValue: re("^al ice$")}, req("GET", "/?dev=al+ice"), true},
		{Filter{Query: "dev", QueryValue: re("^al ice$")}, req("GET", "/?dev=al%20ice"), true},
		{Filter{Query: "dev name", QueryValue: re("^a/b$")}, req("GET", "/?dev%20name=a%2Fb"), true},
		{Filter{Query: "dev", QueryValue: re("^alice$")}, req("GET", "/?dev=%zz&dev=alice"), true},
		{Filter{Query: "dev", QueryValue: re("")}, req("GET", "/?dev=%zz"), false},
		{Filter{Query: "debug"}, req("GET", "/?debug"), true},
		{Filter{Query: "debug", QueryValue: re("")}, req("GET", "/?debug="), true},
		{Filter{Query: "debug"}, req("GET", "/"), false},
		{Filter{Query: "dev"}, req("GET", "/dev"), false},

		// Combinations.
		{Filter{AllOf: []Filter{alice, {Methods: []string{"GET"}}}}, req("GET", "/"), true},
		{Filter{AllOf: []Filter{alice, {Methods: []string{"GET"}}}}, req("POST", "/"), false},
		{Filter{AnyOf: []Filter{{Query: "dev"}, {Methods: []string{"GET"}}}}, req("POST", "/?dev=x"), true},
		{Filter{AnyOf: []Filter{{Query: "dev"}, {Methods: []string{"GET"}}}}, req("POST", "/"), false},
		{Filter{Path: re("^/api/"), AnyOf: []Filter{{Query: "dev"}, {Methods: []string{"GET"}}}}, req("GET", "/web"), false},
		{Filter{AnyOf: []Filter{{AllOf: []Filter{{Methods: []string{"PUT"}}, {Path: re("^/a")}}}, {Header: "X-None"}}}, req("PUT", "/a"), true},
	} {
		if err := tc.f.validate(); err != nil {
			t.Fatal(err)
		}
		if got := tc.f.matches(tc.req); got != tc.want {
			t.Errorf("%+v matches %s %s?%s = %v, want %v", tc.f, tc.req.method, tc.req.path, tc.req.rawQuery, got, tc.want)
		}
	}
}

func TestFilterValidate(t *testing.T) {
	for _, f := range []Filter{
		{}, {HeaderValue: regexp.MustCompile("a")}, {Header: "X Dev"}, {QueryValue: regexp.MustCompile("a")},
		{Methods: []string{"G T"}}, {AllOf: []Filter{{}}}, {AnyOf: []Filter{{Path: regexp.MustCompile("/")}, {Header: "X Dev"}}},
	} {
		if f.validate() == nil {
			t.Errorf("%+v is valid", f)
		}
	}
}

// Host is HTTP/2's :authority, which net/http keeps apart from the header.
func TestFilterSeesTheHTTP2Authority(t *testing.T) {
	f := Filter{Header: "host", HeaderValue: regexp.MustCompile(`^api\.`)}
	if !f.matches(&request{header: textproto.MIMEHeader{}, host: "api.example"}) {
		t.Error("a filter on Host does not see HTTP/2's :authority")
	}
}

func TestCompile(t *testing.T) {
	leaf := func(op wire.FilterOp, arg string) wire.HTTPFilter { return wire.HTTPFilter{Op: op, Arg: arg} }
	tree := wire.HTTPFilter{Op: wire.FilterAllOf, Sub: []wire.HTTPFilter{
		leaf(wire.FilterMethod, "get,head"),
		{Op: wire.FilterAnyOf, Sub: []wire.HTTPFilter{leaf(wire.FilterHeader, "X-Dev: ^alice$"), leaf(wire.FilterQuery, "dev=^alice$")}},
		leaf(wire.FilterPath, "^/api/"),
	}}
	f, err := Compile(tree)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.validate(); err != nil {
		t.Fatal(err)
	}
	for target, want := range map[string]bool{
		"/api/x?dev=alice": true,
		"/api/x?dev=bob":   false,
		"/web?dev=alice":   false,
	} {
		path, query, _ := requestPath("HEAD", target)
		if got := f.matches(&request{method: "HEAD", path: path, rawQuery: query}); got != want {
			t.Errorf("HEAD %s: %v, want %v", target, got, want)
		}
	}

	deep := leaf(wire.FilterPath, "/")
	for range wire.MaxFilterDepth {
		deep = wire.HTTPFilter{Op: wire.FilterAnyOf, Sub: []wire.HTTPFilter{deep}}
	}
	for _, tc := range []struct {
		f    wire.HTTPFilter
		want string
	}{
		{leaf(wire.FilterHeader, "X-Dev"), `header filter "X-Dev"`},
		{leaf(wire.FilterPath, "(("), `path filter "(("`},
		{leaf(wire.FilterMethod, "GET POST"), `invalid method "GET POST"`},
		{leaf(wire.FilterQuery, "=x"), `query filter "=x": want "name=regex"`},
		{wire.HTTPFilter{Op: wire.FilterAllOf}, "all-of: empty"},
		{wire.HTTPFilter{Op: wire.FilterAnyOf, Sub: []wire.HTTPFilter{leaf(wire.FilterPath, "/"), leaf(wire.FilterQuery, "q")}}, `any-of[1]: query filter "q"`},
		{wire.HTTPFilter{Op: 99}, "unknown http filter"},
		{deep, "deeper than 8"},
		{leaf(wire.FilterPath, strings.Repeat("a", wire.MaxFilterLen+1)), "path filter of 1025 bytes"},
	} {
		if _, err := Compile(tc.f); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Compile(%+v) = %v, want an error with %q", tc.f, err, tc.want)
		}
	}
}

func TestFormat(t *testing.T) {
	f := wire.HTTPFilter{Op: wire.FilterAnyOf, Sub: []wire.HTTPFilter{
		{Op: wire.FilterHeader, Arg: `X-Dev: ^"a\l"$`},
		{Op: wire.FilterAllOf, Sub: []wire.HTTPFilter{{Op: wire.FilterMethod, Arg: "GET"}, {Op: wire.FilterQuery, Arg: "dev=<b>"}}},
	}}
	want := `{"any-of":[{"header":"X-Dev: ^\"a\\l\"$"},{"all-of":[{"method":"GET"},{"query":"dev=<b>"}]}]}`
	if got := Format(f); got != want {
		t.Errorf("Format = %s\nwant %s", got, want)
	}
}
