package plugin

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/remocal/kubectl-remocal/plugin/internal/configfile"
)

const (
	configLong = `Settings of exec and port-forward in a YAML file, so that a project's usual
target and flags need not be typed each time.

The file is --config FILE when given, else the file $REMOCAL_CONFIG names, else
.remocal.yaml in the working directory when there is one (--config '' reads
none). Its keys are the long names of the flags (steal, env-include, fs-mode,
...), plus target, the TARGET when the command line names none. Lists are YAML
lists, env is a mapping of variables, durations read as 90s or 10m. The -L and
-R rules of port-forward go under its port-forward key, as local and remote.
Each command takes the keys of its own flags; doctor reads the file too and
checks its target with its sidecar image, transport and container.

A flag given on the command line replaces the file's value for its key, lists
included. The incoming mode is one choice: --no-incoming or --steal=false on the
command line also drops the file's steal and HTTP filters, and --steal its
no-incoming. Paths are relative to the working directory, as on the command line.

A key the file should not have, or a value of the wrong type, is an error that
names the file, the line and the valid choices.

A .remocal.yaml found in the working directory may have come with a cloned
repository: the keys that choose the cluster, the image, what is written or
where a file goes are refused, with the key named, until you run 'kubectl
remocal config trust' (see its help). --config and $REMOCAL_CONFIG are trusted.`

	configExample = `  # A .remocal.yaml: the web deployment, stealing alice's requests
  target: deployment/web
  namespace: shop
  steal: true
  http-header: "X-Dev: alice"
  env:
    LOG_LEVEL: debug
  fs-not-found: [~/.kube]
  port-forward:
    local: ["8080:orders.shop.svc.cluster.local:80"]

  # Then, in that directory
  kubectl remocal exec -- go run .
  kubectl remocal port-forward

  # Let an editor check and complete the file: save the schema, and start the
  # file with "# yaml-language-server: $schema=.remocal.schema.json"
  kubectl remocal config schema > .remocal.schema.json`
)

// NewCmdConfig returns "kubectl remocal config", whose help documents the configuration file.
func NewCmdConfig(streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "config",
		Short:   "About the configuration file, " + configfile.FileName,
		Long:    configLong,
		Example: configExample,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of " + configfile.FileName + ", for editors",
		Long: `Print the JSON Schema (draft 2020-12) of the configuration file: every key, its
type and what it does. Editors with a YAML language server use it to check and
complete the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := json.MarshalIndent(configfile.Schema(flagOf(cmd.Root())), "", "  ")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(streams.Out, "%s\n", b)
			return err
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "trust [FILE]",
		Short: "Let a " + configfile.FileName + " found in the working directory set the keys that need trust",
		Long: `Trust a configuration file as it is now (default: ` + configfile.FileName + ` in the working
directory). A file found in the working directory may have come with a cloned
repository, so its keys that choose the cluster, the image that runs in the
pod, what is written or where a file goes (` + strings.Join(trustedKeys("", configfile.Keys()), ", ") + `;
fs-mode only as write, port-forward.local only beyond loopback) are refused
until you trust it. The trust is kept by the file's absolute path and the
SHA-256 of its content, in ` + trustStoreName + ` in the plugin's directory under
your configuration directory: editing the file takes it back. A file named by
--config or $` + configfile.Env + ` needs no trust.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			path := configfile.FileName
			if len(args) == 1 {
				path = args[0]
			}
			return trustFile(path, streams.Out)
		},
	})
	return cmd
}

// flagOf finds a key's flag on the command that owns it, under root, so that the schema
// describes each key with its flag's usage. The keys of both commands are exec's, whose
// session flags port-forward shares.
func flagOf(root *cobra.Command) configfile.FlagLookup {
	return func(name, flag string) *pflag.Flag {
		cmd, _, err := root.Find([]string{cmp.Or(name, "exec")})
		if err != nil {
			return nil
		}
		return cmd.Flag(flag)
	}
}
