package plugin

import (
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/completion"

	"github.com/remocal/kubectl-remocal/plugin/internal/attach"
)

// completeTarget completes the TYPE/NAME argument: the kinds a target may be, then the names
// of that kind in the namespace, through kubectl's own completion of resource names.
func completeTarget(configFlags *genericclioptions.ConfigFlags) cobra.CompletionFunc {
	names := completion.SpecifiedResourceTypeAndNameCompletionFunc(cmdutil.NewFactory(configFlags), attach.Kinds())
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		if strings.Contains(toComplete, "/") {
			return names(cmd, args, toComplete)
		}
		// Only the TYPE/NAME form is a target: offer "kind/" and let the name follow.
		var kinds []string
		for _, k := range attach.Kinds() {
			if strings.HasPrefix(k, toComplete) {
				kinds = append(kinds, k+"/")
			}
		}
		return kinds, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
}

// completeContainer completes -c with the containers of the target's pod.
func completeContainer(configFlags *genericclioptions.ConfigFlags) cobra.CompletionFunc {
	return completion.ContainerCompletionFunc(cmdutil.NewFactory(configFlags))
}
