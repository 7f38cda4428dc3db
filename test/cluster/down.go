package main

import (
	"context"
	"fmt"
)

// down stops everything up started and removes its links and mounts. The state directory
// (certificates, etcd data, imported images) stays, so the next up is warm.
func (h *harness) down(ctx context.Context) error {
	if err := h.step("stop the cluster", func() error { return h.teardown(ctx, true) }); err != nil {
		return err
	}
	for _, name := range componentNames() {
		if pid, ok := daemonRunning(h.layout, name); ok {
			return fmt.Errorf("%s (pid %d) is still running after down", name, pid)
		}
	}
	fmt.Fprintln(h.progress, "cluster is down")
	return nil
}
