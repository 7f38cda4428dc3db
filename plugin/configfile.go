package plugin

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

const (
	// configEnv names the file when --config does not.
	configEnv  = "REMOCAL_CONFIG"
	configFlag = "config"
)

// addConfigFlag adds --config to a command that reads the configuration file.
//
// There is no -f: in kubectl, -f is --filename, the manifests a command acts on (kubectl exec
// -f pod.yaml picks its pod that way), or --follow; here it would mean a different file.
func addConfigFlag(cmd *cobra.Command) {
	cmd.Flags().String(configFlag, "", "read default flag values and the TARGET from this YAML file instead of $"+configEnv+" or ./"+configFileName+" ('' reads none; see 'kubectl remocal config --help')")
	_ = cmd.MarkFlagFilename(configFlag, "yaml", "yml")
}

// applyConfigFile sets the flags of cmd that the command line did not set from the
// configuration file, if there is one, and keeps its target for Complete. It runs before
// Complete, so what the file says goes through the same parsing and validation as flags.
func (o *sessionOptions) applyConfigFile(cmd *cobra.Command) error {
	path, namedBy := configPath(cmd.Flags(), os.Getenv)
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if namedBy == "" && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if namedBy == "" {
			namedBy = "configuration file"
		}
		return fmt.Errorf("%s: %w", namedBy, err)
	}
	cfg, err := decodeConfig(path, data)
	if err != nil {
		return err
	}
	plan := planConfig(cfg, path, cmd)
	if namedBy == "" {
		// Found, not named: it may come with a cloned repository.
		if err := checkTrust(path, data, plan); err != nil {
			return err
		}
	}
	if err := newApplier(cfg, path, cmd).apply(plan); err != nil {
		return err
	}
	// A file picked up from the working directory changes what a command line means: say so.
	fmt.Fprintf(cmd.ErrOrStderr(), "remocal: settings from %s\n", path)
	o.fileTarget = cfg.Target
	return nil
}

// configPath says which configuration file to read: --config, else $REMOCAL_CONFIG, else
// .remocal.yaml in the working directory; "" for none. namedBy is "--config" or
// "$REMOCAL_CONFIG" when the user named the file, so that its absence is an error rather
// than no settings.
func configPath(flags *pflag.FlagSet, getenv func(string) string) (path, namedBy string) {
	if flags.Changed(configFlag) {
		path, _ = flags.GetString(configFlag)
		return path, "--" + configFlag
	}
	if path = getenv(configEnv); path != "" {
		return path, "$" + configEnv
	}
	return configFileName, ""
}

// applyConfig sets each flag of cmd named by a key of cfg, unless the command line set it.
// Keys of another command are left out: a file written for exec serves port-forward too.
func applyConfig(cfg *fileConfig, file string, cmd *cobra.Command) error {
	return newApplier(cfg, file, cmd).apply(planConfig(cfg, file, cmd))
}

// newApplier notes what the command line gave, before the file's values mark their flags as
// changed too.
func newApplier(cfg *fileConfig, file string, cmd *cobra.Command) *applier {
	flags := cmd.Flags()
	given := map[string]bool{}
	flags.Visit(func(f *pflag.Flag) { given[f.Name] = true })
	return &applier{file: file, lines: cfg.lines, cmd: cmd.Name(), flags: flags, given: given}
}

// planConfig lists what applying cfg to cmd would set, setting nothing.
func planConfig(cfg *fileConfig, file string, cmd *cobra.Command) []assignment {
	return newApplier(cfg, file, cmd).plan("", fileKeys, reflect.ValueOf(cfg).Elem())
}

type applier struct {
	file  string
	lines map[string]int
	cmd   string
	flags *pflag.FlagSet
	given map[string]bool
}

// assignment is one key of the file that sets its flag: the values as the command line would
// give them.
type assignment struct {
	path   string // "steal", "port-forward.local"
	key    configKey
	line   int
	values []string
}

// plan lists the keys under prefix that the file sets, the command takes, and the command line
// leaves to the file.
func (a *applier) plan(prefix string, keys []configKey, v reflect.Value) []assignment {
	var plan []assignment
	for _, k := range keys {
		path := prefix + k.name
		line, set := a.lines[path]
		if !set || (k.cmd != "" && k.cmd != a.cmd) {
			continue
		}
		if k.section != nil {
			plan = append(plan, a.plan(path+".", k.section, v.Field(k.index).Elem())...)
			continue
		}
		if k.flag == "" || a.overridden(k.flag) {
			continue
		}
		plan = append(plan, assignment{path: path, key: k, line: line, values: flagValues(v.Field(k.index))})
	}
	return plan
}

// apply sets the flags of plan.
func (a *applier) apply(plan []assignment) error {
	for _, as := range plan {
		if a.flags.Lookup(as.key.flag) == nil {
			// TestConfigKeysAreTheFlags keeps this from happening.
			return fmt.Errorf("configuration key %s: no flag --%s for %s", as.path, as.key.flag, a.cmd)
		}
		for _, s := range as.values {
			if err := a.flags.Set(as.key.flag, s); err != nil {
				return &configError{a.file, as.line, fmt.Sprintf("%s: %v", as.path, err)}
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
	case "http-header", "http-path":
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
	case map[string]string:
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(x)) {
			kv = append(kv, k+"="+x[k])
		}
		return kv
	}
	panic(fmt.Sprintf("config: no flag value for %s", v.Type()))
}
