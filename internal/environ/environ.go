// Package environ merges the target container's environment into the local one by the session's
// rules: which remote variables come in, which local ones stay, and explicit overrides.
package environ

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
)

// Rules decide how the remote environment is merged. Include, Exclude, KeepLocal and Guarded
// are shell globs on the variable name (path.Match syntax).
type Rules struct {
	// Include takes only the remote variables it matches; empty takes every name. A pattern
	// that is exactly the name of a kept-local or guarded variable takes that one in on
	// purpose, and narrows nothing.
	Include []string
	Exclude []string
	// KeepLocal are variables of this machine whose remote values stay out silently.
	KeepLocal []string
	// Guarded are variables that would choose code to run here: their remote values stay out,
	// and Withheld names them.
	Guarded   []string
	Overrides []string // KEY=VALUE, applied last
}

// Validate checks the globs and overrides, so a typo fails before the session starts.
func (r Rules) Validate() error {
	for _, g := range slices.Concat(r.Include, r.Exclude, r.KeepLocal, r.Guarded) {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("bad pattern %q: %w", g, err)
		}
	}
	for _, o := range r.Overrides {
		if k, _, ok := strings.Cut(o, "="); !ok || k == "" {
			return fmt.Errorf("-e %q is not KEY=VALUE", o)
		}
	}
	return nil
}

// Remote returns the remote variables the rules take, plus the overrides, as KEY=VALUE sorted by
// key: what --env-file writes.
func (r Rules) Remote(remote []string) []string {
	vars := map[string]string{}
	for _, kv := range remote {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || !r.takes(k) {
			continue
		}
		vars[k] = v
	}
	for _, o := range r.Overrides {
		k, v, _ := strings.Cut(o, "=")
		vars[k] = v
	}
	return sorted(vars)
}

// Merge returns the local environment with the remote variables the rules take (and the
// overrides) laid over it: the program's environment.
func (r Rules) Merge(local, remote []string) []string { return overlay(local, r.Remote(remote)) }

// Local returns the local environment with only the overrides laid over it: the environment of
// what runs on this machine for the program without being it, such as the toolchain of a
// `go run`. The overrides are the user's own, and -e CGO_ENABLED=0 is meant for the toolchain.
func (r Rules) Local(local []string) []string {
	return overlay(local, Rules{Overrides: r.Overrides}.Remote(nil))
}

// overlay returns base with vars laid over it, sorted by key.
func overlay(base, vars []string) []string {
	m := map[string]string{}
	for _, list := range [][]string{base, vars} {
		for _, kv := range list {
			if k, v, ok := strings.Cut(kv, "="); ok {
				m[k] = v
			}
		}
	}
	return sorted(m)
}

// Withheld returns the names of the remote variables that stay out because they are guarded,
// sorted: what the session tells the user it left out.
func (r Rules) Withheld(remote []string) []string {
	var names []string
	for _, kv := range remote {
		k, _, ok := strings.Cut(kv, "=")
		if ok && k != "" && matchAny(r.Guarded, k) && !r.takes(k) && !matchAny(r.Exclude, k) && !slices.Contains(names, k) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names
}

func (r Rules) takes(key string) bool {
	if matchAny(r.Exclude, key) {
		return false
	}
	kept := matchAny(r.KeepLocal, key) || matchAny(r.Guarded, key)
	if kept {
		return slices.Contains(r.Include, key)
	}
	narrowing := slices.DeleteFunc(slices.Clone(r.Include), r.namesKept)
	return len(narrowing) == 0 || matchAny(narrowing, key)
}

// namesKept tells an Include pattern that names one kept-local or guarded variable exactly: it
// asks for that variable in addition, rather than for only it.
func (r Rules) namesKept(pattern string) bool {
	return !strings.ContainsAny(pattern, `*?[\`) && (matchAny(r.KeepLocal, pattern) || matchAny(r.Guarded, pattern))
}

func matchAny(globs []string, key string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, key); ok {
			return true
		}
	}
	return false
}

func sorted(vars map[string]string) []string {
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
