package configfile

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/remocal/kubectl-remocal/pkg/httpfilter"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

const (
	// Env names the file when --config does not.
	Env = "REMOCAL_CONFIG"
	// Flag is the flag that names the file.
	Flag = "config"
)

// AddFlag adds --config to a command that reads the configuration file.
//
// There is no -f: in kubectl, -f is --filename, the manifests a command acts on (kubectl exec
// -f pod.yaml picks its pod that way), or --follow; here it would mean a different file.
func AddFlag(cmd *cobra.Command) {
	cmd.Flags().String(Flag, "", "read default flag values and the TARGET from this YAML file instead of $"+Env+" or ./"+FileName+" ('' reads none; see 'kubectl remocal config --help')")
	_ = cmd.MarkFlagFilename(Flag, "yaml", "yml")
}

// Path says which configuration file to read: --config, else $REMOCAL_CONFIG, else
// .remocal.yaml in the working directory; "" for none. namedBy is "--config" or
// "$REMOCAL_CONFIG" when the user named the file, so that its absence is an error rather
// than no settings.
func Path(flags *pflag.FlagSet, getenv func(string) string) (path, namedBy string) {
	if flags.Changed(Flag) {
		path, _ = flags.GetString(Flag)
		return path, "--" + Flag
	}
	if path = getenv(Env); path != "" {
		return path, "$" + Env
	}
	return FileName, ""
}

// newApplier notes what the command line gave, before the file's values mark their flags as
// changed too.
func newApplier(cfg *File, file string, cmd *cobra.Command) *applier {
	flags := cmd.Flags()
	given := map[string]bool{}
	flags.Visit(func(f *pflag.Flag) { given[f.Name] = true })
	return &applier{file: file, lines: cfg.lines, cmd: cmd.Name(), flags: flags, given: given}
}

// Plan lists what the file cfg, read from file, sets on cmd: each flag of cmd named by a key
// of cfg, unless the command line set it. Keys of another command are left out: a file
// written for exec serves port-forward too. It sets nothing: Apply does, once the caller has
// checked the plan.
func Plan(cfg *File, file string, cmd *cobra.Command) []Assignment {
	return newApplier(cfg, file, cmd).plan("", fileKeys, reflect.ValueOf(cfg).Elem())
}

// Apply sets the flags of cmd as plan, made by Plan for cmd, says.
func Apply(cmd *cobra.Command, file string, plan []Assignment) error {
	return (&applier{file: file, cmd: cmd.Name(), flags: cmd.Flags()}).apply(plan)
}

type applier struct {
	file  string
	lines map[string]int
	cmd   string
	flags *pflag.FlagSet
	given map[string]bool
}

// Assignment is one key of the file that sets its flag: the values as the command line would
// give them.
type Assignment struct {
	Path   string // "steal", "port-forward.local"
	Key    Key
	Line   int
	Values []string // as the command line would give them, one per flag
}

// plan lists the keys under prefix that the file sets, the command takes, and the command line
// leaves to the file.
func (a *applier) plan(prefix string, keys []Key, v reflect.Value) []Assignment {
	var plan []Assignment
	for _, k := range keys {
		path := prefix + k.Name
		line, set := a.lines[path]
		if !set || (k.Cmd != "" && k.Cmd != a.cmd) {
			continue
		}
		if k.Section != nil {
			plan = append(plan, a.plan(path+".", k.Section, v.Field(k.index).Elem())...)
			continue
		}
		if k.Flag == "" || a.overridden(k.Flag) {
			continue
		}
		plan = append(plan, Assignment{Path: path, Key: k, Line: line, Values: flagValues(v.Field(k.index))})
	}
	return plan
}

// apply sets the flags of plan.
func (a *applier) apply(plan []Assignment) error {
	for _, as := range plan {
		if a.flags.Lookup(as.Key.Flag) == nil {
			// TestConfigKeysAreTheFlags keeps this from happening.
			return fmt.Errorf("configuration key %s: no flag --%s for %s", as.Path, as.Key.Flag, a.cmd)
		}
		for _, s := range as.Values {
			if err := a.flags.Set(as.Key.Flag, s); err != nil {
				return &Error{a.file, as.Line, fmt.Sprintf("%s: %v", as.Path, err)}
			}
		}
	}
	return nil
}

// overridden tells whether the command line replaces the file's value of flag: when it gave
// that flag, or, for the incoming mode, a flag that picks another mode. The file's steal: true
// under --no-incoming would otherwise be a contradiction the user never wrote, and its HTTP
// filters under --steal=false or --no-incoming would have nothing to filter.
func (a *applier) overridden(flag string) bool {
	switch flag {
	case "steal":
		return a.given[flag] || a.given["no-incoming"]
	case "no-incoming":
		return a.given[flag] || a.given["steal"]
	case "http-header", "http-path", "http-method", "http-query", "http-filter":
		notStealing := a.given["steal"] && a.flags.Lookup("steal").Value.String() == "false"
		return a.given[flag] || a.given["no-incoming"] || notStealing
	}
	return a.given[flag]
}

// flagValues are the command-line values that say what v says: one per item of a list, one
// KEY=VALUE per variable (in order of name, so that runs compare).
func flagValues(v reflect.Value) []string {
	switch x := v.Interface().(type) {
	case time.Duration:
		return []string{x.String()}
	case string:
		return []string{x}
	case bool:
		return []string{strconv.FormatBool(x)}
	case []string:
		return x
	case *wire.HTTPFilter:
		if x == nil {
			return nil
		}
		return []string{httpfilter.Format(*x)}
	case map[string]string:
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(x)) {
			kv = append(kv, k+"="+x[k])
		}
		return kv
	}
	panic(fmt.Sprintf("config: no flag value for %s", v.Type()))
}
