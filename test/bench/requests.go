package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	corev1 "k8s.io/api/core/v1"
)

// pathFigures are one small-request load's figures ("operations/s p50-ms p99-ms", see pings)
// on each path: under exec to the echo Service over each transport, and their baselines,
// the same client through plain kubectl port-forward and from the node to the pod IP.
type pathFigures struct {
	plainPF, podIP, remocalPF, remocalDirect [3]float64
}

// pingPaths runs `pings args... ADDR` on every path against the pod's TCP echo server.
//
// With new connections, keep -n low: the client closes first, so each connection leaves its
// port in TIME_WAIT for a minute, and connect on this machine takes its ports from the even
// half of 32768-60999. With some 10,000 of them held towards the pod IP, connections from the
// node to the pod IP fell from about 7,000 to 1,200 per second in a row of two runs, so that
// the baseline measured the port search rather than the pod (the layer's and kubectl's own
// connections are to loopback, where the kernel reuses such ports).
func (b *bench) pingPaths(ctx context.Context, pod *corev1.Pod, args ...string) (pathFigures, error) {
	var f pathFigures
	self, err := os.Executable()
	if err != nil {
		return f, err
	}
	client := func(addr string) []string {
		return append(append([]string{self, pingsArg}, args...), addr)
	}
	fw, err := b.plainPortForward(ctx, pod.Name, 9000)
	if err != nil {
		return f, fmt.Errorf("plain port-forward: %w", err)
	}
	f.plainPF, err = runLoad(exec.CommandContext(ctx, self, client(fw.addr)[1:]...), nil)
	fw.stop()
	if err != nil {
		return f, fmt.Errorf("plain port-forward: %w", err)
	}
	service := "echo." + namespace + ".svc.cluster.local:9000"
	if f.remocalPF, err = runLoad(b.remocalExec(ctx, pod, "port-forward", client(service)...), nil); err != nil {
		return f, fmt.Errorf("exec, port-forward path: %w", err)
	}
	if f.podIP, err = runLoad(exec.CommandContext(ctx, self, client(pod.Status.PodIP + ":9000")[1:]...), nil); err != nil {
		return f, fmt.Errorf("node to the pod IP: %w", err)
	}
	if f.remocalDirect, err = runLoad(b.remocalExec(ctx, pod, "direct", client(service)...), nil); err != nil {
		return f, fmt.Errorf("exec, direct path: %w", err)
	}
	return f, nil
}

// latency measures one client sending one small request at a time, on a kept connection and
// on a new connection each (from connect to the reply's first byte), from a program under
// exec to the echo Service, against the same client through plain kubectl port-forward (the
// port-forward path's baseline) and from the node to the pod IP (the direct path's).
func (b *bench) latency(ctx context.Context, pod *corev1.Pod) error {
	kept, err := b.pingPaths(ctx, pod, "-c", "1", "-d", "3s")
	if err != nil {
		return fmt.Errorf("kept connection: %w", err)
	}
	fresh, err := b.pingPaths(ctx, pod, "-c", "1", "-new", "-d", "3s", "-n", "2000")
	if err != nil {
		return fmt.Errorf("new connections: %w", err)
	}
	const pf, ip = "plain kubectl port-forward, same pod port", "node to the pod IP"
	row("1 request at a time, kept conn, pf path p50", kept.remocalPF[1], kept.plainPF[1], "ms", pf)
	row("1 request at a time, kept conn, direct p50", kept.remocalDirect[1], kept.podIP[1], "ms", ip)
	row("  the same, added (us)", 1000*(kept.remocalDirect[1]-kept.podIP[1]), 150, "us", "target: at most 150 us added")
	row("new conn to first reply byte, pf path p50", fresh.remocalPF[1], fresh.plainPF[1], "ms", pf+", new conn")
	row("new conn to first reply byte, direct p50", fresh.remocalDirect[1], fresh.podIP[1], "ms", ip+", new conn")
	row("new conn to first reply byte, direct p50", fresh.remocalDirect[1], fresh.plainPF[1], "ms", pf+", new conn")
	return nil
}

// connect measures new connections per second with 16 in flight, each one request (the
// issue's redis-benchmark -c 16 -k 0 -t ping, by the single-threaded pings client), from a
// program under exec to the echo Service, against the same through plain kubectl port-forward
// and from the node to the pod IP.
func (b *bench) connect(ctx context.Context, pod *corev1.Pod) error {
	f, err := b.pingPaths(ctx, pod, "-c", "16", "-new", "-d", "5s", "-n", "4000")
	if err != nil {
		return err
	}
	const pf, ip = "plain kubectl port-forward, same pod port", "node to the pod IP"
	row("new conns/s, 16 in flight, pf path", f.remocalPF[0], f.plainPF[0], "conn/s", pf)
	row("new conns/s, 16 in flight, direct path", f.remocalDirect[0], f.podIP[0], "conn/s", ip)
	row("new conns/s, 16 in flight, direct path", f.remocalDirect[0], f.plainPF[0], "conn/s", pf)
	row("new conns, 16 in flight, pf path p50", f.remocalPF[1], f.plainPF[1], "ms", pf)
	row("new conns, 16 in flight, direct path p50", f.remocalDirect[1], f.podIP[1], "ms", ip)
	return nil
}
