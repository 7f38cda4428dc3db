// Package environ merges the target container's environment into the local one by the session's
// rules: which remote variables come in, which local ones stay, and explicit overrides.
package environ

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// DefaultKeepLocal returns the variables that describe the developer's machine rather than the
// app: taking the pod's PATH or HOME would break the local toolchain.
func DefaultKeepLocal() []string {
	return []string{"PATH", "HOME", "USER", "SHELL", "TERM", "LANG", "PWD", "TMPDIR", "KUBECONFIG"}
}

// Rules decide how the remote environment is merged. Include and Exclude are shell globs on the
// variable name (path.Match syntax); an empty Include takes every name.
type Rules struct {
	Include   []string
	Exclude   []string
	KeepLocal []string
	Overrides []string // KEY=VALUE, applied last
}

// Validate checks the globs and overrides, so a typo fails before the session starts.
func (r Rules) Validate() error {
	for _, g := range append(append([]string{}, r.Include...), r.Exclude...) {
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
	keep := set(r.KeepLocal)
	vars := map[string]string{}
	for _, kv := range remote {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || keep[k] || !r.takes(k) {
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
// overrides) laid over it.
func (r Rules) Merge(local, remote []string) []string {
	vars := map[string]string{}
	for _, kv := range local {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	for _, kv := range r.Remote(remote) {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	return sorted(vars)
}

func (r Rules) takes(key string) bool {
	if len(r.Include) > 0 && !matchAny(r.Include, key) {
		return false
	}
	return !matchAny(r.Exclude, key)
}

func matchAny(globs []string, key string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, key); ok {
			return true
		}
	}
	return false
}

func set(keys []string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

func sorted(vars map[string]string) []string {
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
