package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/remocal/kubectl-remocal/test/cluster/daemon"
	"github.com/remocal/kubectl-remocal/test/cluster/hostnet"
	"github.com/remocal/kubectl-remocal/test/cluster/kubebuild"
	"github.com/remocal/kubectl-remocal/test/cluster/mounts"
	"github.com/remocal/kubectl-remocal/test/cluster/runtime"
)

// up starts the cluster. On a healthy running cluster it only prints the KUBECONFIG line. Anything
// else (nothing running, or a run killed half-way, the normal case in CI) is first torn down the
// way down does it, so every start begins from the same clean state.
func (h *harness) up(ctx context.Context) error {
	l := h.layout
	if err := h.healthy(ctx); err == nil {
		fmt.Fprintln(h.progress, "cluster is already up")
		fmt.Fprintf(h.out, "KUBECONFIG=%s\n", l.adminKubeconfig())
		return nil
	}
	if err := h.step("install missing Debian packages", func() error { return ensurePackages(ctx, h.progress) }); err != nil {
		return err
	}
	var bins binaries
	if err := h.buildBinaries(ctx, &bins); err != nil {
		return err
	}
	if err := h.step("clean up what an earlier run left", func() error { return h.teardown(ctx, false) }); err != nil {
		return err
	}
	if err := h.step("prepare the host network", func() error {
		if err := hostnet.EnableForwarding(); err != nil {
			return err
		}
		return hostnet.EnsureNodeAddress(ctx, l.NodeLink, []net.IP{l.NodeIP, l.NodeIP6}, []string{l.TestBed, l.TestBed6})
	}); err != nil {
		return err
	}
	if l.CgroupRoot != "/" {
		if err := h.step("create the kubelet's cgroup root "+l.CgroupRoot, func() error { return ensureCgroupRoot(l.CgroupRoot) }); err != nil {
			return err
		}
	}
	if err := h.step("check that the cluster's ports are free", func() error { return portsFree(ctx, l) }); err != nil {
		return err
	}
	var creds credentials
	if err := h.step("write certificates and configuration", func() error {
		var err error
		if creds, err = ensureCredentials(l); err != nil {
			return err
		}
		return writeConfigs(l, creds)
	}); err != nil {
		return err
	}
	for _, comp := range components(l, creds, bins) {
		if err := h.startComponent(ctx, comp); err != nil {
			return err
		}
		if comp.name == "containerd" {
			if err := h.step("import the pause image", func() error { return h.importPause(ctx) }); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(h.progress, "cluster is up in %s\n", time.Since(h.started).Round(time.Second))
	fmt.Fprintf(h.out, "KUBECONFIG=%s\n", l.adminKubeconfig())
	return nil
}

func (h *harness) buildBinaries(ctx context.Context, bins *binaries) error {
	l := h.layout
	if err := os.MkdirAll(l.path("logs"), 0o755); err != nil {
		return err
	}
	buildLog := l.path("logs", "build.log")
	logFile, err := os.OpenFile(buildLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	b := kubebuild.Builder{CacheDir: l.CacheDir, Log: logFile}
	if err := h.step("kubernetes "+kubebuild.KubernetesVersion()+" binaries (cold build: about 12 minutes; log: "+buildLog+")", func() error {
		dir, cached, err := b.Kubernetes(ctx, kubebuild.KubernetesVersion())
		if cached {
			fmt.Fprintf(h.progress, "    cached in %s\n", dir)
		}
		bins.kubeDir = dir
		return err
	}); err != nil {
		return err
	}
	return h.step("coredns "+coreDNSVersion+" binary", func() error {
		bin, cached, err := b.CoreDNS(ctx, coreDNSVersion)
		if cached {
			fmt.Fprintf(h.progress, "    cached at %s\n", bin)
		}
		bins.coreDNS = bin
		return err
	})
}

// startComponent starts comp and waits until it is ready. The kubelet starts on a clean slate:
// the volume mounts of a killed run's pods are gone with the pods removed by teardown.
func (h *harness) startComponent(ctx context.Context, comp component) error {
	return h.step("start "+comp.name, func() error {
		spec := comp.spec
		spec.Name = comp.name
		proc, err := daemon.Start(h.layout.daemons(), spec)
		if err != nil {
			return err
		}
		if err := wait(ctx, comp, proc); err != nil {
			return fmt.Errorf("%w\n%s", err, logTail(proc.Log, 15))
		}
		return nil
	})
}

// healthy reports whether every component runs and the node is Ready.
func (h *harness) healthy(ctx context.Context) error {
	l := h.layout
	for _, name := range componentNames() {
		if _, ok := daemon.Running(l.daemons(), name); !ok {
			return fmt.Errorf("%s is not running", name)
		}
	}
	if _, err := os.Stat(l.adminKubeconfig()); err != nil {
		return err
	}
	// A cluster of another version than asked for is not the one wanted: up restarts it.
	pid, _ := daemon.Running(l.daemons(), "kube-apiserver")
	want := kubebuild.Builder{CacheDir: l.CacheDir}.KubernetesBinDir(kubebuild.KubernetesVersion())
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || filepath.Dir(exe) != want {
		return fmt.Errorf("kube-apiserver runs %s, not Kubernetes %s", exe, kubebuild.KubernetesVersion())
	}
	return nodeReady(l)(ctx)
}

// componentNamed returns the component called name, for what needs no credentials or binaries.
func componentNamed(l layout, name string) component {
	for _, c := range components(l, credentials{}, binaries{}) {
		if c.name == name {
			return c
		}
	}
	panic("no component " + name) // a name from this file: a programming error
}

// componentNames lists the component names in start order, without needing credentials.
func componentNames() []string {
	var names []string
	for _, c := range components(layout{}, credentials{}, binaries{}) {
		names = append(names, c.name)
	}
	return names
}

// teardown stops every recorded process in reverse start order, removes all pods from the runtime
// (starting containerd for that if a killed run left pods behind), and unmounts what is left.
// deleteLinks also removes the network links (down does; up keeps them to reuse).
func (h *harness) teardown(ctx context.Context, deleteLinks bool) error {
	l := h.layout
	d := l.daemons()
	names := componentNames()
	var errs []error
	for i := len(names) - 1; i >= 0; i-- {
		name := names[i]
		switch name {
		case "containerd":
			errs = append(errs, h.removePods(ctx))
		case "kube-proxy":
			errs = append(errs, daemon.Stop(ctx, d, name, 10*time.Second))
			errs = append(errs, kubeProxyCleanup(ctx, l))
			continue
		case "kubelet":
			errs = append(errs, daemon.Stop(ctx, d, name, 10*time.Second))
			hostnet.RemoveKubeletIPTables(ctx)
			continue
		}
		errs = append(errs, daemon.Stop(ctx, d, name, 10*time.Second))
	}
	errs = append(errs, mounts.UnmountUnder(l.StateDir, l.RunDir))
	if deleteLinks {
		errs = append(errs, hostnet.DeleteLinks(ctx, l.PodLink, l.NodeLink))
		// The pods' IP leases died with the pods; stale ones would exhaust nothing but confuse.
		errs = append(errs, os.RemoveAll(l.path("cni", "ipam")))
	}
	return errors.Join(errs...)
}

// removePods removes every pod sandbox through CRI. If containerd is not running but has state
// (a killed run), it is started just for this, so that the pods' shims, network namespaces and
// mounts are released the way containerd itself releases them.
func (h *harness) removePods(ctx context.Context) error {
	l := h.layout
	d := l.daemons()
	if _, running := daemon.Running(d, "containerd"); !running {
		if _, err := os.Stat(l.path("containerd.toml")); err != nil {
			return nil // never started here: nothing to remove
		}
		if _, err := os.Stat(l.containerdRoot()); err != nil {
			return nil
		}
		// containerd's spec needs no credentials or built binaries.
		comp := componentNamed(l, "containerd")
		spec := comp.spec
		spec.Name = comp.name
		proc, err := daemon.Start(d, spec)
		if err != nil {
			return err
		}
		if err := wait(ctx, comp, proc); err != nil {
			return err
		}
	}
	n, err := runtime.RemoveAllPods(ctx, l.containerdSocket())
	if n > 0 {
		fmt.Fprintf(h.progress, "    removed %d pod sandboxes\n", n)
	}
	return err
}

// kubeProxyCleanup removes the Service rules kube-proxy wrote into iptables, so that no
// redirection of the test ranges outlives the cluster.
func kubeProxyCleanup(ctx context.Context, l layout) error {
	bin := filepath.Join(kubebuild.Builder{CacheDir: l.CacheDir}.KubernetesBinDir(kubebuild.KubernetesVersion()), "kube-proxy")
	for _, need := range []string{bin, l.path("kube-proxy.yaml")} {
		if _, err := os.Stat(need); err != nil {
			return nil // never ran here: no rules to remove
		}
	}
	out, err := exec.CommandContext(ctx, bin, "--cleanup", "--config", l.path("kube-proxy.yaml")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("kube-proxy --cleanup: %w: %s", err, lastLines(string(out), 5))
	}
	return nil
}

// portsFree checks every port the cluster binds, and names the holder of a busy one.
func portsFree(ctx context.Context, l layout) error {
	node, lo := l.NodeIP.String(), "127.0.0.1"
	ports := []struct {
		host string
		port int
	}{
		{lo, l.EtcdPort}, {lo, l.EtcdPeerPort}, {node, l.APIServerPort}, {lo, 10257}, {lo, 10259},
		{node, 10250}, {lo, 10248}, {lo, 10249}, {lo, 10256}, {node, 53}, {lo, l.CoreDNSHealthPort},
	}
	var errs []error
	for _, p := range ports {
		addr := net.JoinHostPort(p.host, fmt.Sprint(p.port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			holder, _ := exec.CommandContext(ctx, "ss", "-Hltnp", fmt.Sprintf("sport = :%d", p.port)).Output()
			errs = append(errs, fmt.Errorf("port %s is taken: %s", addr, strings.TrimSpace(string(holder))))
			continue
		}
		ln.Close()
	}
	return errors.Join(errs...)
}

func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return "last lines of " + path + ":\n" + lastLines(string(b), n)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
