// Command remocal-cluster runs a real single-node Kubernetes cluster on this machine for the
// project's demo, e2e tests and benchmarks: containerd with a CNI bridge, etcd, the Kubernetes
// components built from the Go module proxy, and cluster DNS.
//
//	remocal-cluster up              start (or reuse) the cluster; last line: KUBECONFIG=<path>
//	remocal-cluster down            stop exactly what up started, remove its links and mounts
//	remocal-cluster status          show each component; exit 1 unless all run
//	remocal-cluster load FILE...    import image tarballs (docker-archive or OCI) into the node
//
// It needs root (containerd, network links) and keeps its state machine-wide (see layout.go),
// because the cluster is a machine resource shared by every checkout.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/remocal/kubectl-remocal/test/cluster/kubebuild"

	"golang.org/x/sys/unix"
)

const usage = `usage: remocal-cluster up|down|status|build|load FILE...

  up       start the local cluster, or reuse the running one; prints KUBECONFIG=<path> last
  down     stop every process the harness started, remove its network links and mounts
  status   show each component's state; exit status 1 unless every one runs
  build    build (or find in the cache) the binaries of REMOCAL_KUBE_VERSION, running nothing
  load     import image tarballs (docker-archive or OCI archive) into the node's containerd
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "remocal-cluster: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	h := &harness{layout: newLayout(), out: stdout, progress: stderr, started: time.Now()}
	cmd, rest := args[0], args[1:]
	if cmd != "status" && os.Geteuid() != 0 {
		return fmt.Errorf("%s needs root (it runs containerd and creates network links); run it with sudo", cmd)
	}
	switch cmd {
	case "up":
		return h.withLock(func() error { return h.up(ctx) })
	case "down":
		return h.withLock(func() error { return h.down(ctx) })
	case "status":
		return h.status(ctx)
	case "build":
		// The binaries of the version alone, into the cache: a cluster of another version
		// may run meanwhile.
		var bins binaries
		if err := h.buildBinaries(ctx, &bins); err != nil {
			return err
		}
		// And the kubectl the e2e tests use with that cluster (krew's test).
		return h.step("kubectl "+kubebuild.KubernetesVersion(), func() error {
			_, _, err := kubebuild.Builder{CacheDir: h.layout.CacheDir, Log: io.Discard}.Kubectl(ctx, kubebuild.KubernetesVersion())
			return err
		})
	case "load":
		if len(rest) == 0 {
			return errors.New("load: name at least one image tarball")
		}
		return h.load(ctx, rest)
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// harness carries what every command needs: where things are and where to report.
type harness struct {
	layout   layout
	out      io.Writer // the KUBECONFIG line and status tables
	progress io.Writer // steps and their timings
	started  time.Time
}

// step runs one named step and reports it with its duration; a failure names the step.
func (h *harness) step(name string, fn func() error) error {
	begin := time.Now()
	fmt.Fprintf(h.progress, "--> %s\n", name)
	if err := fn(); err != nil {
		return fmt.Errorf("step %q failed: %w", name, err)
	}
	fmt.Fprintf(h.progress, "    done in %s\n", time.Since(begin).Round(100*time.Millisecond))
	return nil
}

// withLock serialises harness runs on this machine: two checkouts running `make cluster-up` at
// once must not start two clusters on the same ports.
func (h *harness) withLock(fn func() error) error {
	if err := os.MkdirAll(h.layout.StateDir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(h.layout.lockFile(), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		fmt.Fprintf(h.progress, "waiting for another remocal-cluster run to finish (lock %s)\n", h.layout.lockFile())
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			return fmt.Errorf("lock %s: %w", h.layout.lockFile(), err)
		}
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return fn()
}
