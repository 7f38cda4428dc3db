package httpfilter

import (
	"errors"
	"fmt"
	"net/textproto"
	"regexp"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Filter selects the requests that go to the local process; the others go to the app. Every
// field that is set must match. A Filter with no field set is refused by Serve: sending every
// request to the app is never what a user who asked for a filter meant.
type Filter struct {
	// Header names a request header, e.g. "X-Dev" (case does not matter). With HeaderValue
	// nil, the header only has to be present.
	Header string
	// HeaderValue must match one of Header's field values as received (a field line's value
	// is not split at commas). Matching is unanchored, as regexp.MatchString does.
	HeaderValue *regexp.Regexp
	// Path must match the request's path as sent: percent-encoding kept, query excluded
	// ("/a%2Fb" for "/a%2Fb?x=1"). Matching is unanchored.
	Path *regexp.Regexp
}

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

// validate refuses filters that cannot mean what their author wanted.
func (f Filter) validate() error {
	switch {
	case f.Header == "" && f.HeaderValue != nil:
		return errors.New("http filter: header value without header name")
	case f.Header == "" && f.Path == nil:
		return errors.New("http filter: no header and no path to match")
	case f.Header != "" && !httpguts.ValidHeaderFieldName(f.Header):
		return fmt.Errorf("http filter: invalid header name %q", f.Header)
	}
	return nil
}

// matches reports whether a request with header and path goes to the local process.
func (f Filter) matches(header textproto.MIMEHeader, path string) bool {
	if f.Path != nil && !f.Path.MatchString(path) {
		return false
	}
	if f.Header == "" {
		return true
	}
	values := header.Values(f.Header)
	if f.HeaderValue == nil {
		return len(values) > 0
	}
	for _, v := range values {
		if f.HeaderValue.MatchString(v) {
			return true
		}
	}
	return false
}
