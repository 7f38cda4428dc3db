package httpfilter

import (
	"fmt"
	"net/textproto"
	"regexp"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// The filters as users write them (flags, the configuration file) and as wire.Subscribe
// carries them, parsed into Filters. The plugin parses them to refuse a mistake before it
// attaches; the sidecar parses them again, from a peer it does not trust.

// ParseHeader parses the command-line form "Name: regex" of a header filter. The regex may
// be empty, which matches any value: "X-Dev:" selects requests that carry X-Dev at all.
func ParseHeader(s string) (name string, re *regexp.Regexp, err error) {
	name, expr, ok := strings.Cut(s, ":")
	if !ok {
		return "", nil, fmt.Errorf("header filter %q: want \"Name: regex\"", s)
	}
	name = strings.TrimSpace(name)
	if !httpguts.ValidHeaderFieldName(name) {
		return "", nil, fmt.Errorf("header filter %q: invalid header name %q", s, name)
	}
	re, err = regexp.Compile(strings.TrimSpace(expr))
	if err != nil {
		return "", nil, fmt.Errorf("header filter %q: %w", s, err)
	}
	return textproto.CanonicalMIMEHeaderKey(name), re, nil
}

// ParsePath parses a path filter, a regex.
func ParsePath(s string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(s)
	if err != nil {
		return nil, fmt.Errorf("path filter %q: %w", s, err)
	}
	return re, nil
}

// ParseMethods parses the form "GET,HEAD" of a method filter: methods, separated by commas,
// upper-cased (see Filter.Methods).
func ParseMethods(s string) ([]string, error) {
	var methods []string
	for m := range strings.SplitSeq(s, ",") {
		m = strings.TrimSpace(m)
		if !validMethod(m) {
			return nil, fmt.Errorf("method filter %q: invalid method %q", s, m)
		}
		methods = append(methods, strings.ToUpper(m))
	}
	return methods, nil
}

// validMethod reports whether m is a method token (RFC 9110 section 9.1).
func validMethod(m string) bool { return httpguts.ValidHeaderFieldName(m) }

// ParseQuery parses the form "name=regex" of a query filter. The name is the decoded
// parameter name, matched exactly; the regex may be empty, which matches any value: "debug="
// selects requests that carry debug at all.
func ParseQuery(s string) (name string, re *regexp.Regexp, err error) {
	name, expr, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return "", nil, fmt.Errorf("query filter %q: want \"name=regex\"", s)
	}
	if re, err = regexp.Compile(expr); err != nil {
		return "", nil, fmt.Errorf("query filter %q: %w", s, err)
	}
	return name, re, nil
}

// Compile parses the tree f into a Filter. An error names the node at fault, as in
// "any-of[1]: query filter ...", so that a user finds it in what they wrote.
func Compile(f wire.HTTPFilter) (Filter, error) {
	nodes := 0
	return compile(f, 1, &nodes)
}

func compile(f wire.HTTPFilter, depth int, nodes *int) (Filter, error) {
	*nodes++
	switch {
	case depth > wire.MaxFilterDepth:
		return Filter{}, fmt.Errorf("http filter nested deeper than %d", wire.MaxFilterDepth)
	case *nodes > wire.MaxFilterNodes:
		return Filter{}, fmt.Errorf("http filter of more than %d parts", wire.MaxFilterNodes)
	case len(f.Arg) > wire.MaxFilterLen:
		return Filter{}, fmt.Errorf("%s filter of %d bytes, more than %d", f.Op, len(f.Arg), wire.MaxFilterLen)
	}
	var c Filter
	var err error
	switch f.Op {
	case wire.FilterHeader:
		c.Header, c.HeaderValue, err = ParseHeader(f.Arg)
	case wire.FilterPath:
		c.Path, err = ParsePath(f.Arg)
	case wire.FilterMethod:
		c.Methods, err = ParseMethods(f.Arg)
	case wire.FilterQuery:
		c.Query, c.QueryValue, err = ParseQuery(f.Arg)
	case wire.FilterAllOf, wire.FilterAnyOf:
		c, err = compileInner(f, depth, nodes)
	default:
		err = fmt.Errorf("unknown http filter %s", f.Op)
	}
	return c, err
}

// compileInner compiles an all-of or an any-of.
func compileInner(f wire.HTTPFilter, depth int, nodes *int) (Filter, error) {
	switch {
	case len(f.Sub) == 0:
		return Filter{}, fmt.Errorf("%s: empty: it needs a list of filters", f.Op)
	case f.Arg != "":
		return Filter{}, fmt.Errorf("%s: an argument %q where a list of filters goes", f.Op, f.Arg)
	}
	subs := make([]Filter, len(f.Sub))
	for i, s := range f.Sub {
		var err error
		if subs[i], err = compile(s, depth+1, nodes); err != nil {
			return Filter{}, fmt.Errorf("%s[%d]: %w", f.Op, i, err)
		}
	}
	if f.Op == wire.FilterAllOf {
		return Filter{AllOf: subs}, nil
	}
	return Filter{AnyOf: subs}, nil
}
