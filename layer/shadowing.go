package layer

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"
)

// systemPaths are this machine's files that a program needs to be this machine's: its
// programs and libraries (with the links that choose among them, /etc/alternatives, and the
// package managers' trees /nix and /snap), the dynamic loader's configuration (a pod's
// /etc/ld.so.preload would load its code into every program), what a login shell sources, and
// the kernel's filesystems. The pod's files are never shown over them, nor over a directory
// that holds one (/etc, /). /opt is left out on purpose: images put their apps and their
// configuration there, and a program that runs a local tool from /opt is rare.
func systemPaths() []string {
	return []string{
		"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/usr", "/nix", "/snap",
		"/etc/alternatives",
		"/etc/ld.so.preload", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
		"/etc/profile", "/etc/profile.d", "/etc/bash.bashrc", "/etc/environment",
		"/proc", "/sys", "/dev",
	}
}

// Shadowing returns those of paths (absolute, in the order given) that would be shown over a
// system path, or over one of keep: the program's own executable, say. A path is judged as
// written and as this machine resolves it, since a mount lands where the local symlinks lead.
func Shadowing(paths []string, keep ...string) []string {
	for _, k := range slices.Clone(keep) {
		if real, err := filepath.EvalSymlinks(k); err == nil {
			keep = append(keep, real)
		}
	}
	var out []string
	for _, p := range paths {
		p = filepath.Clean(p)
		for _, at := range []string{p, resolveExisting(p)} {
			// Inside a system directory, or over one, or over a file of keep.
			if slices.ContainsFunc(systemPaths(), func(s string) bool { return within(at, s) || within(s, at) }) ||
				slices.ContainsFunc(keep, func(k string) bool { return within(filepath.Clean(k), at) }) {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// within tells whether path is dir or below it.
func within(path, dir string) bool {
	return path == dir || dir == "/" || strings.HasPrefix(path, dir+"/")
}

// resolveExisting returns p with the symlinks of its longest existing part resolved.
func resolveExisting(p string) string {
	var rest []string
	for dir := p; ; dir = filepath.Dir(dir) {
		real, err := filepath.EvalSymlinks(dir)
		if err == nil {
			return filepath.Join(append([]string{real}, rest...)...)
		}
		if !errors.Is(err, fs.ErrNotExist) || dir == "/" {
			return p
		}
		rest = append([]string{filepath.Base(dir)}, rest...)
	}
}

// checkShadowing refuses a configuration that shows files over system paths: the plugin leaves
// them out with a warning, and this is the layer's own guard.
func checkShadowing(cfg Config) error {
	paths := slices.Collect(maps.Keys(cfg.Files))
	for _, m := range cfg.Mounts {
		paths = append(paths, m.Path)
	}
	if bad := Shadowing(paths); len(bad) > 0 {
		slices.Sort(bad)
		return fmt.Errorf("layer files: %s would be shown over this machine's system files", strings.Join(bad, ", "))
	}
	return nil
}
