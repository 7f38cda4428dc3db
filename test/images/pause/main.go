//go:build unix

// Command pause is the pod sandbox ("infra") container of the test cluster.
// It stands in for registry.k8s.io/pause because no registry is reachable
// here, so the cluster's sandbox image has to be built locally like every
// other image.
//
// Like the upstream program it does nothing but hold the pod's namespaces
// open: as PID 1 of a pod that shares its process namespace it reaps
// orphaned zombies, and it exits 0 on SIGTERM or SIGINT so that stopping a
// sandbox is not reported as a failure.
package main

import (
	"errors"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child. Signals coalesce, so one SIGCHLD may
// stand for several exits.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
	}
}
