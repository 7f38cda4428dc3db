package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
)

// requiredFiles maps what the cluster runs to the Debian package that provides it.
func requiredFiles() map[string]string {
	return map[string]string{
		"/usr/bin/containerd":              "containerd",
		"/usr/bin/ctr":                     "containerd",
		"/usr/bin/containerd-shim-runc-v2": "containerd",
		"/usr/sbin/runc":                   "runc",
		"/usr/lib/cni/bridge":              "containernetworking-plugins",
		"/usr/lib/cni/host-local":          "containernetworking-plugins",
		"/usr/lib/cni/loopback":            "containernetworking-plugins",
		"/usr/bin/etcd":                    "etcd-server",
		"/usr/sbin/iptables":               "iptables",
		"/usr/sbin/conntrack":              "conntrack",
		"/usr/bin/socat":                   "socat",
		"/usr/sbin/ip":                     "iproute2",
		"/usr/bin/ss":                      "iproute2",
	}
}

// ensurePackages installs the Debian packages whose files are missing. Nothing is installed when
// everything is present, so the common (warm) path costs a few stat calls.
func ensurePackages(ctx context.Context, progress io.Writer) error {
	missing := map[string]bool{}
	for file, pkg := range requiredFiles() {
		if _, err := os.Stat(file); err != nil {
			missing[pkg] = true
		}
	}
	if len(missing) == 0 {
		return nil
	}
	var pkgs []string
	for p := range missing {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	fmt.Fprintf(progress, "    installing %v\n", pkgs)
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	update := exec.CommandContext(ctx, "apt-get", "update", "-qq")
	update.Env = env
	if out, err := update.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get update: %w: %s", err, lastLines(string(out), 10))
	}
	install := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-y", "-qq", "--no-install-recommends"}, pkgs...)...)
	install.Env = env
	if out, err := install.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get install %v: %w: %s", pkgs, err, lastLines(string(out), 10))
	}
	return nil
}
