package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// forwarder is a running port-forward command, kubectl's or the plugin's, and the local address
// it listens on.
type forwarder struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	addr   string
}

// startForwarder starts argv with env added to this process's environment and reads the local
// address from the first line on stdout that starts with "Forwarding from " ("Forwarding from
// 127.0.0.1:PORT -> ..."). The rest of stdout is read and dropped, so that kubectl's line per
// connection never blocks it.
func startForwarder(ctx context.Context, argv, env []string) (*forwarder, error) {
	const prefix = "Forwarding from "
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	f := &forwarder{cmd: cmd, cancel: cancel}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			f.addr = strings.Fields(rest)[0]
			break
		}
	}
	if f.addr == "" {
		f.stop()
		return nil, fmt.Errorf("%s printed no %q line", argv[0], prefix)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return f, nil
}

// stop ends the forwarder and waits for it.
func (f *forwarder) stop() {
	f.cancel()
	_ = f.cmd.Wait()
}

// plainPortForward starts `kubectl port-forward` of the pod's port to a free local port: the
// baseline of every port-forward path figure.
func (b *bench) plainPortForward(ctx context.Context, podName string, port int) (*forwarder, error) {
	return startForwarder(ctx, []string{"kubectl", "--kubeconfig", b.kubeconfig, "-n", namespace, "port-forward", "pod/" + podName, fmt.Sprintf("0:%d", port)}, nil)
}
