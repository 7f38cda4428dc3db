package environ

import (
	"slices"
	"strings"
)

// Changed returns the names of the remote variables the rules take whose values differ between
// before and after, two readings of the remote environment (added and removed ones included),
// sorted: what a running program cannot take, named without the values, which may be secrets.
func (r Rules) Changed(before, after []string) []string {
	was, is := r.values(before), r.values(after)
	var names []string
	for k, v := range is {
		if old, ok := was[k]; !ok || old != v {
			names = append(names, k)
		}
	}
	for k := range was {
		if _, ok := is[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return names
}

// values are the remote variables the rules take, by name; the overrides are the user's, the
// same in both readings, and stay out.
func (r Rules) values(remote []string) map[string]string {
	vars := map[string]string{}
	for _, kv := range remote {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" && r.takes(k) {
			vars[k] = v
		}
	}
	return vars
}
