package plugin

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
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
names the file, the line and the valid choices.`

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
		Short:   "About the configuration file, " + configFileName,
		Long:    configLong,
		Example: configExample,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of " + configFileName + ", for editors",
		Long: `Print the JSON Schema (draft 2020-12) of the configuration file: every key, its
type and what it does. Editors with a YAML language server use it to check and
complete the file.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			b, err := json.MarshalIndent(configSchema(), "", "  ")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(streams.Out, "%s\n", b)
			return err
		},
	})
	return cmd
}
