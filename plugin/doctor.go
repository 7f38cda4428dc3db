package plugin

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/remocal/kubectl-remocal/plugin/internal/attach"
	"github.com/remocal/kubectl-remocal/plugin/internal/configfile"
)

const (
	doctorLong = `Check what kubectl remocal needs, on this machine and in the cluster, and
print one row per check, with what to do about each that fails or falls short.

On this machine: the kernel and its seccomp user notification, access to the
program's descriptors (pidfd_getfd, Yama's ptrace_scope; a trial program runs
under the layer), user namespaces and /dev/fuse (the pod's files). In the
cluster: the API server and its version, ephemeral containers, the RBAC
permissions a session uses, and the namespace's Pod Security level with what
it allows (steal needs privileged; mirror needs NET_RAW: privileged, or baseline where the runtime grants it).

With a TARGET, also: the pod and container; the sidecar (a running one is
reused, else one is added as exec adds it, which shows within seconds whether
its image can be pulled, and which exec then reuses); whether it answers over
direct UDP to the pod IP and through a port-forward; and whether it reads the
target's environment. It takes exec's flags that choose these (-c,
--sidecar-image, --transport, --ttl).

STATUS is ok; warn (exec works, without what the row says); fail (exec cannot
work until it is fixed); or skip (not checked). The exit code is 0 when no check
failed, and 1 otherwise. Each check is bounded in time, and the whole run ends
within 15 seconds, also against a cluster that does not answer.`

	doctorExample = `  # Check this machine, the cluster and the current namespace
  kubectl remocal doctor

  # Also check a target: its pod, the sidecar image pull, the link and the environment
  kubectl remocal doctor deployment/web -n shop

  # For tools: the same checks as JSON (status: ok, warn, fail or skip)
  kubectl remocal doctor deployment/web -o json`
)

// doctorBudget bounds the whole doctor run, leaving time to print before the 15 s it promises.
const doctorBudget = 14 * time.Second

// checkTimeout bounds each request-sized check (one API call, one handshake).
const checkTimeout = 5 * time.Second

// DoctorOptions holds the flags and state of "kubectl remocal doctor".
type DoctorOptions struct {
	genericiooptions.IOStreams
	attachFlags
	Output string

	// Set by Complete: the attacher, or why the kubeconfig gave none (a row of the report,
	// not a failed command).
	attacher  *attach.Attacher
	clientErr error
}

// NewCmdDoctor returns "kubectl remocal doctor".
func NewCmdDoctor(configFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &DoctorOptions{attachFlags: newAttachFlags(configFlags), IOStreams: streams}
	cmd := &cobra.Command{
		Use:                   "doctor [TYPE/NAME] [-c CONTAINER] [-o json|yaml]",
		DisableFlagsInUseLine: true,
		Short:                 "Check what works and what does not, on this machine and in the cluster",
		Long:                  doctorLong,
		Example:               doctorExample,
		Args:                  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// The file a session would use: its target, sidecar image and transport are what
			// the checks should try.
			if err := o.applyConfigFile(cmd); err != nil {
				return err
			}
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return usageError(cmd, err)
			}
			return o.Run(cmd.Context())
		},
	}
	o.attachFlags.AddFlags(cmd)
	o.attachFlags.AddUserLabelFlag(cmd)
	configfile.AddFlag(cmd)
	cmd.Flags().StringVarP(&o.Output, "output", "o", o.Output, "Output format. One of: (json, yaml).")
	return cmd
}

// Complete builds the clients. A kubeconfig that gives none is reported, not returned: the
// local checks still mean something.
func (o *DoctorOptions) Complete(args []string) error {
	target := ""
	if len(args) == 1 {
		target = args[0]
	}
	// The sidecar exec adds by default, so that the next exec reuses it: one that mirrors.
	o.attacher, o.clientErr = o.attachFlags.Complete(target, attach.Use{Needs: attach.Needs{Capture: true}})
	return nil
}

// Validate checks the flags without I/O.
func (o *DoctorOptions) Validate() error {
	if !slices.Contains(doctorOutputs, o.Output) {
		return fmt.Errorf("--output must be 'json' or 'yaml', not %q", o.Output)
	}
	if o.targetRef == "" {
		return nil // the session flags matter only with a TARGET
	}
	return o.attachFlags.Validate()
}

// Run checks, prints the report, and fails with exit code 1 (and no message of its own: the
// report says it) when a check failed.
func (o *DoctorOptions) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, doctorBudget)
	defer cancel()
	checks := localChecks(ctx)
	checks = append(checks, o.clusterChecks(ctx)...)
	report := newDoctorReport(checks)
	if err := report.print(o.Out, o.Output); err != nil {
		return err
	}
	if !report.Ready {
		return ExitError{Code: 1}
	}
	return nil
}

// bounded returns a context for one check: checkTimeout or less, within the whole run's.
func bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, checkTimeout)
}

// timeLeft is a failed row for a check that the run's budget left no time for.
func timeLeft(ctx context.Context, name string) (check, bool) {
	if ctx.Err() == nil {
		return check{}, false
	}
	return check{Name: name, Status: statusFail, Detail: fmt.Sprintf("not checked: doctor's %s were used up by the checks above", doctorBudget),
		Fix: "run doctor again; if the cluster is slow to answer, the rows above show where"}, true
}
