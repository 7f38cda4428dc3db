package plugin

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/remocal/kubectl-remocal/plugin/internal/attach"
	"github.com/remocal/kubectl-remocal/plugin/internal/progress"
)

const (
	cleanLong = `List the port redirects remocal sidecars left in a pod, and remove those of
sidecars that no longer run.

A sidecar removes its redirects when its session ends, when the plugin goes
silent (7 s), and, through its guard process, when its worker dies. Redirects
survive only when the whole sidecar container was killed; the next session that
takes a port removes them too. This command finds and removes them now. The
redirects of running sidecars are listed and left alone.`

	cleanExample = `  # Show and remove the redirects dead sidecars left in a pod
  kubectl remocal clean pod/web-7d9f

  # Only list them
  kubectl remocal clean deployment/web --list`
)

// CleanOptions holds the flags of "kubectl remocal clean".
type CleanOptions struct {
	genericiooptions.IOStreams
	attachFlags
	ListOnly bool

	attacher *attach.Attacher // set by Complete
}

// NewCmdClean returns "kubectl remocal clean".
func NewCmdClean(configFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &CleanOptions{attachFlags: newAttachFlags(configFlags), IOStreams: streams}
	cmd := &cobra.Command{
		Use:                   "clean TYPE/NAME [-c CONTAINER] [--list]",
		DisableFlagsInUseLine: true,
		Short:                 "List and remove the port redirects that dead sidecars left in a pod",
		Long:                  cleanLong,
		Example:               cleanExample,
		Args:                  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			// It only looks, and the redirect tables are nftables': NET_ADMIN.
			if o.attacher, err = o.attachFlags.Complete(args[0], attach.Use{Needs: attach.Needs{Redirect: true}, Inspect: true}); err != nil {
				return err
			}
			if err := o.attachFlags.Validate(); err != nil {
				return usageError(cmd, err)
			}
			return attach.ExplainMissingFeature(o.Run(cmd.Context()))
		},
	}
	o.attachFlags.AddFlags(cmd)
	cmd.Flags().BoolVar(&o.ListOnly, "list", false, "only list the redirects; remove nothing")
	return cmd
}

// Run asks a sidecar in the pod (the running one, or a new one) for the redirect tables and
// prints them.
func (o *CleanOptions) Run(ctx context.Context) error {
	p := progress.New(o.ErrOut)
	sess, err := o.attacher.Start(ctx, p)
	if err != nil {
		return err
	}
	defer sess.Close()
	tables, err := sess.Redirects(ctx, !o.ListOnly)
	if err != nil {
		return err
	}
	if len(tables) == 0 {
		fmt.Fprintln(o.Out, "No port redirects in the pod.")
		return nil
	}
	w := tabwriter.NewWriter(o.Out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "TABLE\tPORTS\tSIDECAR\tACTION")
	for _, t := range tables {
		sidecar, action := "running", "kept"
		if !t.Live {
			sidecar, action = "gone", "removed"
			if !t.Removed {
				action = "left (--list)"
				if !o.ListOnly {
					action = "NOT removed (see the sidecar's log)"
				}
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.Name, formatPorts(t.Ports), sidecar, action)
	}
	return w.Flush()
}

func formatPorts(ports []uint16) string {
	if len(ports) == 0 {
		return "-"
	}
	ports = slices.Sorted(slices.Values(ports))
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ",")
}
