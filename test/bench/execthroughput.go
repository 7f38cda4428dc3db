package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// streamFigures are one bulk echo's rate and the CPU seconds each process spent over it.
type streamFigures struct {
	mibs float64
	cpu  map[string]float64
}

// The processes named in streamFigures.cpu besides the chain's daemons.
const (
	cpuForwarder = "forwarder" // kubectl port-forward, or the plugin under exec
	cpuClient    = "client"    // the stream client itself
	cpuSidecar   = "sidecar"   // every remocal sidecar of the pod, guard and worker
)

// execThroughput echoes b.size bytes each way from a program under exec through the echo
// Service's TCP port, over each path, against plain kubectl port-forward of the same pod port
// and raw TCP from the node to the pod IP, with the CPU seconds each process spends on those
// bytes: on the port-forward path the API server, the kubelet and containerd carry them too.
func (b *bench) execThroughput(ctx context.Context, pod *corev1.Pod) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	client := func(addr string) []string {
		return []string{self, streamArg, "-bytes", strconv.FormatInt(b.size, 10), addr}
	}
	fw, err := b.plainPortForward(ctx, pod.Name, 9000)
	if err != nil {
		return fmt.Errorf("plain port-forward: %w", err)
	}
	plain, err := b.runStream(ctx, pod, exec.CommandContext(ctx, self, client(fw.addr)[1:]...), fw.cmd.Process.Pid)
	fw.stop()
	if err != nil {
		return fmt.Errorf("plain port-forward: %w", err)
	}
	service := "echo." + namespace + ".svc.cluster.local:9000"
	pf, err := b.runStream(ctx, pod, b.remocalExec(ctx, pod, "port-forward", client(service)...), 0)
	if err != nil {
		return fmt.Errorf("exec, port-forward path: %w", err)
	}
	raw, err := b.runStream(ctx, pod, exec.CommandContext(ctx, self, client(pod.Status.PodIP + ":9000")[1:]...), -1)
	if err != nil {
		return fmt.Errorf("raw TCP to the pod IP: %w", err)
	}
	direct, err := b.runStream(ctx, pod, b.remocalExec(ctx, pod, "direct", client(service)...), 0)
	if err != nil {
		return fmt.Errorf("exec, direct path: %w", err)
	}

	label := fmt.Sprintf("exec echo %d MiB, port-forward path (MiB/s)", b.size>>20)
	row(label, pf.mibs, plain.mibs, "MiB/s", "plain kubectl port-forward, same pod port")
	row("exec echo, direct path (MiB/s)", direct.mibs, raw.mibs, "MiB/s", "raw TCP, node to the pod IP")
	row("exec echo, direct path (MiB/s)", direct.mibs, plain.mibs, "MiB/s", "plain kubectl port-forward, same pod port")
	row("raw TCP, node to the pod IP (MiB/s)", raw.mibs, plain.mibs, "MiB/s", "plain kubectl port-forward, same pod port")
	chain := func(f streamFigures) float64 {
		sum := 0.0
		for _, d := range chainDaemons() {
			sum += f.cpu[d]
		}
		return sum
	}
	row("CPU-s apiserver+kubelet+containerd, pf path", chain(pf), chain(plain), "s", "the same for plain kubectl port-forward")
	names := append([]string{cpuForwarder, cpuClient}, chainDaemons()...)
	names = append(names, cpuSidecar)
	total := func(f streamFigures) float64 {
		sum := 0.0
		for _, n := range names {
			sum += f.cpu[n]
		}
		return sum
	}
	for _, c := range []struct {
		path        string
		got, base   streamFigures
		baseline    string
		forwarderIs string
	}{
		{"pf path", pf, plain, "plain kubectl port-forward", "kubectl / plugin"},
		{"direct path", direct, raw, "raw TCP to the pod IP", "plugin"},
	} {
		for _, n := range names {
			shown := n
			if n == cpuForwarder {
				shown = c.forwarderIs
			}
			row(fmt.Sprintf("CPU-s %s, %s", shown, c.path), c.got.cpu[n], c.base.cpu[n], "s", c.baseline)
		}
		row("CPU-s all of the above, "+c.path, total(c.got), total(c.base), "s", c.baseline)
	}
	return nil
}

// runStream runs cmd, a stream client run directly or under exec, and reads the CPU time of
// the chain's processes from its "go" to its "done". forwarder is the PID of the process that
// carries the bytes on this machine: 0 for cmd's own (the plugin), -1 for none.
func (b *bench) runStream(ctx context.Context, pod *corev1.Pod, cmd *exec.Cmd, forwarder int) (streamFigures, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return streamFigures{}, err
	}
	if err := cmd.Start(); err != nil {
		return streamFigures{}, err
	}
	if forwarder == 0 {
		forwarder = cmd.Process.Pid
	}
	extra := map[string]int{}
	if forwarder > 0 {
		extra[cpuForwarder] = forwarder
	}
	var probe cpuProbe
	var before map[string]float64
	var got streamFigures
	var probeErr, parseErr error
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		line := lines.Text()
		if line == "go" {
			if probe, probeErr = newCPUProbe(ctx, b.client, pod, extra); probeErr == nil {
				before = probe.read()
			}
			continue
		}
		rest, ok := strings.CutPrefix(line, "done ")
		if !ok || probe == nil {
			continue
		}
		after := probe.read()
		got.cpu = map[string]float64{}
		for name, v := range after {
			got.cpu[name] = v - before[name]
		}
		f := strings.Fields(rest)
		if len(f) != 2 {
			parseErr = fmt.Errorf("the client said %q", line)
			continue
		}
		var err1, err2 error
		got.mibs, err1 = strconv.ParseFloat(f[0], 64)
		got.cpu[cpuClient], err2 = strconv.ParseFloat(f[1], 64)
		if err1 != nil || err2 != nil {
			parseErr = fmt.Errorf("the client said %q", line)
		}
	}
	if err := cmd.Wait(); err != nil {
		return got, fmt.Errorf("%w: %s", err, stderr.Bytes())
	}
	switch {
	case probeErr != nil:
		return got, probeErr
	case parseErr != nil:
		return got, parseErr
	case got.cpu == nil:
		return got, fmt.Errorf("the client printed no figures: %s", stderr.Bytes())
	}
	return got, nil
}
