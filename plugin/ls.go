package plugin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/plugin/internal/attach"
)

const (
	lsLong = `List the remocal sidecars of the pods in the namespace, live and dead, one row
per sidecar: its pod, the container it targets, its state, its age, the client
key it serves (OWNER, "(you)" when it is this machine's key), its image, and
its sessions (SESSIONS): each one's user label (--user-label of exec and
port-forward), how long it has run, and the pod ports it holds.

A sidecar answers only the key it serves, so only your own running sidecars are
asked for their sessions, each within 5 seconds and all at once; the others
show "-". A sidecar of an older version lists only the ports its sessions hold. A TARGET (TYPE/NAME) restricts the list to the pod exec would
pick for it.`

	lsExample = `  # The sidecars in the current namespace
  kubectl remocal ls

  # In every namespace
  kubectl remocal ls -A

  # Those of the pod exec would pick for a workload, as JSON
  kubectl remocal ls deployment/web -o json`
)

// lsOutputs are the values of ls's -o, as kubectl names them.
var lsOutputs = []string{"", "json", "yaml"}

// LsOptions holds the flags and state of "kubectl remocal ls".
type LsOptions struct {
	genericiooptions.IOStreams
	attachFlags
	AllNamespaces bool
	Output        string

	attacher *attach.Attacher // set by Complete
}

// NewCmdLs returns "kubectl remocal ls".
func NewCmdLs(configFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &LsOptions{attachFlags: newAttachFlags(configFlags), IOStreams: streams}
	cmd := &cobra.Command{
		Use:                   "ls [TYPE/NAME] [-A] [-o json|yaml]",
		DisableFlagsInUseLine: true,
		Short:                 "List the remocal sidecars in a namespace, with their state, owner and subscriptions",
		Long:                  lsLong,
		Example:               lsExample,
		Args:                  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target := ""
			if len(args) == 1 {
				target = args[0]
			}
			// ls reads no configuration file: only a TARGET on the command line restricts
			// the list. It only looks.
			var err error
			if o.attacher, err = o.attachFlags.Complete(target, attach.Use{Inspect: true}); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return usageError(cmd, err)
			}
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "list the sidecars in all namespaces")
	f.StringVarP(&o.Output, "output", "o", o.Output, "Output format. One of: (json, yaml).")
	f.Var((*transportFlag)(&o.Transport), "transport", "how to reach your sidecars: "+transportUsage)
	cmd.ValidArgsFunction = completeTarget(configFlags)
	return cmd
}

// Validate checks the flags without I/O.
func (o *LsOptions) Validate() error {
	if !slices.Contains(lsOutputs, o.Output) {
		return fmt.Errorf("--output must be 'json' or 'yaml', not %q", o.Output)
	}
	if o.AllNamespaces && o.targetRef != "" {
		return errors.New("a TARGET names one pod of one namespace: it does not go with --all-namespaces")
	}
	return nil
}

// Run lists the pods, asks your running sidecars for their sessions, and prints.
func (o *LsOptions) Run(ctx context.Context) error {
	var pods []corev1.Pod
	switch {
	case o.targetRef != "":
		t, err := o.attacher.Resolve(ctx)
		if err != nil {
			return err
		}
		pods = []corev1.Pod{*t.Pod}
	default:
		ns := o.attacher.Namespace
		if o.AllNamespaces {
			ns = metav1.NamespaceAll
		}
		list, err := o.attacher.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list the pods: %w", err)
		}
		pods = list.Items
	}
	id, pin, err := o.identity()
	if err != nil {
		return err
	}
	now := time.Now()
	rows := sidecarRows(pods, pin, now)
	o.askSubscriptions(ctx, rows, pods, id, now)
	spreadSessions(rows)
	if len(rows) == 0 && o.Output == "" {
		where := "namespace " + o.attacher.Namespace
		switch {
		case o.AllNamespaces:
			where = "any namespace"
		case o.targetRef != "":
			where = "pod " + pods[0].Name
		}
		fmt.Fprintf(o.ErrOut, "No remocal sidecars in %s.\n", where)
		return nil
	}
	return printSidecars(o.Out, rows, o.Output, o.AllNamespaces)
}

// identity loads this machine's client key, without creating one: with no key, no sidecar is
// yours.
func (o *LsOptions) identity() (transport.Identity, string, error) {
	keyPath := o.attacher.KeyPath
	if _, err := os.Stat(keyPath); errors.Is(err, fs.ErrNotExist) {
		return transport.Identity{}, "", nil
	}
	id, err := transport.LoadOrCreateIdentity(keyPath)
	if err != nil {
		return transport.Identity{}, "", fmt.Errorf("client key %s: %w", keyPath, err)
	}
	return id, id.Fingerprint(), nil
}
