package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/remocal/kubectl-remocal/layer"
)

// localChecks are the rows about this machine, each from the check that exec itself acts on
// (layer.New, and the fallbacks of startLayer).
func localChecks(ctx context.Context) []check {
	checks := []check{{Name: "os", Status: statusOK, Detail: layer.Platform()}}
	seccomp := check{Name: "seccomp user notification", Status: statusOK, Detail: "available: the layer can trap the program's network calls"}
	if err := layer.CheckSeccomp(); err != nil {
		seccomp.Status, seccomp.Detail = statusFail, err.Error()
		seccomp.Fix = "upgrade to Linux 5.9 or newer"
		if runtime.GOOS != "linux" {
			seccomp.Fix = "run programs under remocal on Linux; here exec --env-file, port-forward, clean and doctor work"
		}
		checks = append(checks, seccomp)
		for _, name := range []string{"pidfd_getfd", "user namespaces", "/dev/fuse"} {
			checks = append(checks, check{Name: name, Status: statusSkip, Detail: "needs seccomp user notification"})
		}
		return checks
	}
	checks = append(checks, seccomp)
	self, err := os.Executable()
	if err != nil {
		return append(checks, check{Name: "pidfd_getfd", Status: statusFail, Detail: fmt.Sprintf("find the plugin's executable: %v", err), Fix: "run kubectl remocal from a path that still exists"})
	}
	checks = append(checks, descriptorCheck(ctx, self))
	// Without either, exec runs the program with the machine's files and warns (startLayer).
	userns := check{Name: "user namespaces", Status: statusOK, Detail: "available: the program sees the pod's files and DNS settings over the local ones"}
	if err := layer.CheckUserNamespaces(self); err != nil {
		userns.Status, userns.Fix = statusWarn, filesUnavailable(err)
		userns.Detail = err.Error() + ": the pod's files stay local, and its DNS settings cost a trapped syscall on every open"
	}
	fuse := check{Name: "/dev/fuse", Status: statusOK, Detail: "readable and writable: the pod's volumes can be mounted for the program"}
	if err := layer.CheckFUSE(); err != nil {
		fuse.Status, fuse.Fix = statusWarn, filesUnavailable(err)
		fuse.Detail = err.Error() + ": the pod's files stay local"
	}
	return append(checks, userns, fuse)
}

// descriptorCheck tells whether the supervisor can take the program's socket descriptors: Yama's
// ptrace_scope as layer.New reads it, then a trial program under the layer, which is the only
// way to see a pidfd_getfd that a container's seccomp profile refuses.
func descriptorCheck(ctx context.Context, self string) check {
	c := check{Name: "pidfd_getfd", Status: statusOK, Detail: "a trial program ran under the layer"}
	if err := layer.CheckPtrace(); err != nil {
		c.Status, c.Detail = statusFail, err.Error()
		c.Fix = "sudo sysctl kernel.yama.ptrace_scope=1"
		return c
	}
	ctx, cancel := bounded(ctx)
	defer cancel()
	if err := trialRun(ctx, self); err != nil {
		c.Status, c.Detail = statusFail, "a trial program under the layer failed: "+err.Error()
		c.Fix = "where the plugin runs in a container, its seccomp profile must allow pidfd_getfd (e.g. --security-opt seccomp=unconfined)"
	}
	return c
}

// trialRun runs the plugin's own helper probe, which exits at once, as exec runs a program:
// the helper installs the filter and the supervisor takes its listener with pidfd_getfd.
func trialRun(ctx context.Context, self string) error {
	sup, err := layer.New(layer.Config{})
	if err != nil {
		return err
	}
	defer sup.Close()
	cmd, err := sup.Command([]string{self, layer.HelperArg, "--probe"}, os.Environ(), nil)
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done, err := startHeld(cmd)
	if err != nil {
		return err
	}
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return errors.New("it did not end in time")
	}
	if msg := strings.TrimSpace(stderr.String()); err != nil && msg != "" {
		return fmt.Errorf("%w: %s", err, msg)
	}
	return err
}
