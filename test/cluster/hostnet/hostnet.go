// Package hostnet prepares the host side of the test cluster's network: the node's own address
// and the forwarding settings pods need. It changes only links whose names it is given, so
// teardown removes exactly what setup made.
package hostnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// EnsureNodeAddress gives the host stable, non-loopback addresses for the node, one per family:
// the kubelet, the API server and cluster DNS bind to them, and `kubectl logs/exec/port-forward`
// need one (with only loopback the API server answers "no preferred addresses found"). This
// kernel has no "dummy" link type, so the addresses live on an otherwise empty bridge.
//
// Each range of contain is routed onto that bridge too. Without it, an address of the range
// that no local route covers would leave by the default route: a ClusterIP before kube-proxy has
// programmed it (seen answered "404" by something off the machine) or a pod IP after its bridge
// is gone. On the empty bridge such packets find no neighbour and fail here. Locally generated
// packets to a Service still work: kube-proxy's DNAT in OUTPUT re-routes them to the pod bridge.
func EnsureNodeAddress(ctx context.Context, link string, ips []net.IP, contain []string) error {
	if !LinkExists(link) {
		if err := run(ctx, "ip", "link", "add", link, "type", "bridge"); err != nil {
			return err
		}
	}
	out, err := output(ctx, "ip", "-o", "addr", "show", "dev", link)
	if err != nil {
		return err
	}
	for _, ip := range ips {
		args := []string{"addr", "add", ip.String() + "/32", "dev", link}
		if ip.To4() == nil {
			// nodad: the bridge has no ports, so no carrier, and duplicate address detection
			// would leave the address tentative (not bindable) for as long as that lasts.
			args = []string{"addr", "add", ip.String() + "/128", "dev", link, "nodad"}
		}
		if strings.Contains(out, " "+args[2]+" ") {
			continue
		}
		if err := run(ctx, "ip", args...); err != nil {
			return err
		}
	}
	if err := run(ctx, "ip", "link", "set", link, "up"); err != nil {
		return err
	}
	for _, r := range contain {
		if err := run(ctx, "ip", "route", "replace", r, "dev", link); err != nil {
			return err
		}
	}
	return nil
}

// DeleteLinks removes the named links; links that do not exist are skipped.
func DeleteLinks(ctx context.Context, links ...string) error {
	var errs []error
	for _, l := range links {
		if LinkExists(l) {
			errs = append(errs, run(ctx, "ip", "link", "delete", l))
		}
	}
	return errors.Join(errs...)
}

// EnableForwarding turns on what a Kubernetes node requires: IP forwarding of both families (a
// dual-stack node routes its pods' IPv6 too), and bridged traffic
// passing through iptables so that kube-proxy's Service rules also apply between two pods on the
// same bridge (otherwise a pod's reply to another pod bypasses the Service's reverse NAT).
func EnableForwarding() error {
	settings := map[string]string{
		"net/ipv4/ip_forward":                 "1",
		"net/ipv6/conf/all/forwarding":        "1",
		"net/bridge/bridge-nf-call-iptables":  "1",
		"net/bridge/bridge-nf-call-ip6tables": "1",
	}
	for key, value := range settings {
		path := filepath.Join("/proc/sys", key)
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("set %s=%s: %w", strings.ReplaceAll(key, "/", "."), value, err)
		}
	}
	return nil
}

// LinkExists reports whether a network link of that name exists.
func LinkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

func run(ctx context.Context, name string, args ...string) error {
	_, err := output(ctx, name, args...)
	return err
}

func output(ctx context.Context, name string, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// RemoveKubeletIPTables removes the chains the kubelet creates for other components (the
// iptables-mode hint, its canaries, and the KUBE-FIREWALL martian-packet rule, which would
// otherwise keep filtering the host's INPUT and OUTPUT after the cluster is gone). kube-proxy's
// own chains are removed by `kube-proxy --cleanup`. Chains that do not exist are skipped.
func RemoveKubeletIPTables(ctx context.Context) {
	for _, tool := range []string{"iptables", "ip6tables"} {
		for _, hook := range []string{"INPUT", "OUTPUT"} {
			// A rule may have been added more than once; delete until none is left.
			for run(ctx, tool, "-w", "-t", "filter", "-D", hook, "-j", "KUBE-FIREWALL") == nil {
			}
		}
		_ = run(ctx, tool, "-w", "-t", "filter", "-F", "KUBE-FIREWALL")
		_ = run(ctx, tool, "-w", "-t", "filter", "-X", "KUBE-FIREWALL")
		for _, table := range []string{"mangle", "nat", "filter"} {
			_ = run(ctx, tool, "-w", "-t", table, "-X", "KUBE-KUBELET-CANARY")
		}
		_ = run(ctx, tool, "-w", "-t", "mangle", "-X", "KUBE-IPTABLES-HINT")
	}
}
