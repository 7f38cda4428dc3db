// Package plugin implements the kubectl remocal command tree: the root command with kubectl's
// connection flags, and one XOptions type per subcommand.
//
// kubectl runs a plugin by executing kubectl-remocal from PATH, so nothing here depends on the
// binary's own name (os.Args[0]): the name users see comes from cobra's display-name annotation.
package plugin

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/klog/v2"
)

const (
	rootLong = `Run a local process as if it were inside a Kubernetes pod, without deploying it.

The usual kubectl flags (--kubeconfig, --context, -n, --server, ...) select the
cluster, as they do for kubectl itself.`

	rootExample = `  # Print the plugin's version and the cluster's version
  kubectl remocal version

  # Print only the plugin's version, without contacting the cluster
  kubectl remocal version --client`
)

// NewCmdRemocal returns the root command, "kubectl remocal".
func NewCmdRemocal(streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "remocal",
		Short:   "Run a local process as if it were inside a Kubernetes pod",
		Long:    rootLong,
		Example: rootExample,
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: "kubectl remocal",
		},
		// main prints the error once. Usage is never dumped on an error: usage errors carry a
		// one-line pointer to --help instead, and stdout stays for what the user asked.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if v, ok := errors.AsType[*flagValueError](err); ok {
			err = v
		}
		return usageError(c, err)
	})
	// cobra's generated completion command would write scripts for a "remocal" binary, which is
	// not how kubectl completes plugins.
	cmd.CompletionOptions.DisableDefaultCmd = true

	configFlags := genericclioptions.NewConfigFlags(true)
	configFlags.AddFlags(cmd.PersistentFlags())

	// As krew does: klog's only user-facing knob is -v; its other flags are for servers.
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	cmd.PersistentFlags().AddGoFlag(klogFlags.Lookup("v"))
	cmd.PersistentPreRunE = func(*cobra.Command, []string) error {
		return quietLibraries(klogFlags, streams.ErrOut)
	}

	cmd.AddCommand(NewCmdExec(configFlags, streams))
	cmd.AddCommand(NewCmdPortForward(configFlags, streams))
	cmd.AddCommand(NewCmdClean(configFlags, streams))
	cmd.AddCommand(NewCmdLs(configFlags, streams))
	cmd.AddCommand(NewCmdConfig(streams))
	cmd.AddCommand(NewCmdDoctor(configFlags, streams))
	cmd.AddCommand(NewCmdVersion(configFlags, streams))
	return cmd
}

// usageError points a mistyped command line at its help, in one line.
func usageError(cmd *cobra.Command, err error) error {
	return fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())
}

// quietLibraries keeps client-go's own klog lines (discovery retries, "Unhandled Error") off
// stderr at the default verbosity: the plugin reports each failure once, in one line. With -v=1
// or more, klog writes everything as usual.
func quietLibraries(klogFlags *flag.FlagSet, stderr io.Writer) error {
	if v := klogFlags.Lookup("v"); v != nil && v.Value.String() != "0" {
		klog.SetOutput(stderr)
		return nil
	}
	for name, value := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL"} {
		if err := klogFlags.Set(name, value); err != nil {
			return err
		}
	}
	klog.SetOutput(io.Discard)
	return nil
}
