package httpfilter

import (
	"errors"
	"fmt"
	"net/textproto"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Filter selects the requests that go to the local process; the others go to the app. Every
// field that is set must match: a Filter is a node of a tree whose leaves test the header,
// path, method and query, and whose AllOf and AnyOf combine other Filters. A Filter with no
// field set is refused by Serve: sending every request to the app is never what a user who
// asked for a filter meant.
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
	// Methods lists the methods of the requests that match, e.g. GET and HEAD. Methods are
	// case-sensitive in HTTP, but no two in use differ only in case: they are compared
	// ignoring it, so that a filter on "get" means GET.
	Methods []string
	// Query names a query parameter, decoded ("a b" for "a+b" or "a%20b"). With QueryValue
	// nil, the parameter only has to be present, even empty ("?debug").
	Query string
	// QueryValue must match one of Query's decoded values. Matching is unanchored.
	QueryValue *regexp.Regexp
	// AllOf matches when each of its Filters does, AnyOf when one of its Filters does.
	AllOf, AnyOf []Filter
}

// request is what a Filter sees of a request.
type request struct {
	method string
	header textproto.MIMEHeader
	// host is HTTP/2's :authority, which net/http moves from the header to Request.Host; a
	// filter on Host sees it, to behave as with HTTP/1. Empty for HTTP/1.
	host     string
	path     string // see Filter.Path
	rawQuery string // as sent, without the '?'
	// query is rawQuery decoded, at the first filter on it.
	query url.Values
}

// headerValues returns the values of the header field name, canonical.
func (r *request) headerValues(name string) []string {
	if name == "Host" && r.host != "" {
		return []string{r.host}
	}
	return r.header[name]
}

// queryValues returns the decoded values of the query parameter name. A pair that is not valid
// percent-encoding is left out, as url.ParseQuery leaves it: it has no decoded form to match.
func (r *request) queryValues(name string) []string {
	if r.query == nil {
		r.query, _ = url.ParseQuery(r.rawQuery)
	}
	return r.query[name]
}

// validate refuses filters that cannot mean what their author wanted.
func (f Filter) validate() error {
	switch {
	case f.Header == "" && f.HeaderValue != nil:
		return errors.New("http filter: header value without header name")
	case f.Query == "" && f.QueryValue != nil:
		return errors.New("http filter: query value without parameter name")
	case f.Header == "" && f.Path == nil && f.Methods == nil && f.Query == "" && f.AllOf == nil && f.AnyOf == nil:
		return errors.New("http filter: nothing to match")
	case f.Header != "" && !httpguts.ValidHeaderFieldName(f.Header):
		return fmt.Errorf("http filter: invalid header name %q", f.Header)
	}
	for _, m := range f.Methods {
		if !validMethod(m) {
			return fmt.Errorf("http filter: invalid method %q", m)
		}
	}
	for _, sub := range slices.Concat(f.AllOf, f.AnyOf) {
		if err := sub.validate(); err != nil {
			return err
		}
	}
	return nil
}

// matches reports whether r goes to the local process.
func (f Filter) matches(r *request) bool {
	if f.Path != nil && !f.Path.MatchString(r.path) {
		return false
	}
	if f.Methods != nil && !slices.ContainsFunc(f.Methods, func(m string) bool { return strings.EqualFold(m, r.method) }) {
		return false
	}
	if f.Header != "" && !anyMatches(r.headerValues(textproto.CanonicalMIMEHeaderKey(f.Header)), f.HeaderValue) {
		return false
	}
	if f.Query != "" && !anyMatches(r.queryValues(f.Query), f.QueryValue) {
		return false
	}
	for _, sub := range f.AllOf {
		if !sub.matches(r) {
			return false
		}
	}
	return f.AnyOf == nil || slices.ContainsFunc(f.AnyOf, func(sub Filter) bool { return sub.matches(r) })
}

// anyMatches reports whether one of values matches re, or, with re nil, whether there is one.
func anyMatches(values []string, re *regexp.Regexp) bool {
	if re == nil {
		return len(values) > 0
	}
	return slices.ContainsFunc(values, re.MatchString)
}
