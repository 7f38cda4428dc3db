package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// WorkerFlag marks the sidecar process that does the work; the process started without it is
// the guard.
const WorkerFlag = "--worker"

// Guard runs the sidecar's worker as its child with args and outlives it: whatever ends the
// worker (SIGKILL, an OOM kill, a crash), the guard then deletes the redirect tables nobody
// serves any more, so the pod's traffic never stays redirected to a process that is gone. It
// passes SIGTERM and SIGINT on and returns the worker's exit code.
func Guard(ctx context.Context, args []string, logger *slog.Logger) int {
	self, err := os.Executable()
	if err != nil {
		logger.Error("sidecar failed", "err", err.Error())
		return 1
	}
	worker := exec.Command(self, append(args, WorkerFlag)...)
	worker.Stdout, worker.Stderr = os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	if err := worker.Start(); err != nil {
		logger.Error("sidecar failed", "err", fmt.Sprintf("start the worker: %v", err))
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- worker.Wait() }()
	var werr error
wait:
	for {
		select {
		case s := <-sigs:
			_ = worker.Process.Signal(s)
		case werr = <-done:
			break wait
		}
	}
	removeDeadTables(ctx, logger)
	var ee *exec.ExitError
	switch {
	case werr == nil:
		return 0
	case errors.As(werr, &ee):
		logger.Warn("sidecar worker ended", "state", ee.ProcessState.String())
		if code := ee.ExitCode(); code > 0 {
			return code
		}
		return 1
	default:
		logger.Error("sidecar failed", "err", werr.Error())
		return 1
	}
}
