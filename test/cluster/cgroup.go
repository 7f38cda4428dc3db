package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// cgroupV1 is where this kernel mounts its cgroup v1 hierarchies, one directory per controller.
const cgroupV1 = "/sys/fs/cgroup"

// ensureCgroupRoot creates root in every cgroup v1 hierarchy, for a kubelet whose cgroupRoot is
// not "/": the kubelet refuses a root that does not exist, and creates its kubepods below it.
// A cpuset cgroup takes no task until it has CPUs and memory nodes, so those are copied from
// the hierarchy's top.
func ensureCgroupRoot(root string) error {
	hierarchies, err := os.ReadDir(cgroupV1)
	if err != nil {
		return err
	}
	for _, h := range hierarchies {
		top := filepath.Join(cgroupV1, h.Name())
		if _, err := os.Stat(filepath.Join(top, "cgroup.procs")); err != nil {
			continue // not a hierarchy (a symlink such as cpu,cpuacct, or a file)
		}
		dir := filepath.Join(top, root)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create cgroup %s: %w", dir, err)
		}
		if h.Name() != "cpuset" {
			continue
		}
		for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
			if b, err := os.ReadFile(filepath.Join(dir, file)); err == nil && len(bytes.TrimSpace(b)) > 0 {
				continue
			}
			b, err := os.ReadFile(filepath.Join(top, file))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, file), b, 0o644); err != nil {
				return fmt.Errorf("set %s of cgroup %s: %w", file, dir, err)
			}
		}
	}
	return nil
}
