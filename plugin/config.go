package plugin

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/remocal/kubectl-remocal/plugin/internal/configfile"
)

// applyConfigFile sets the flags of cmd that the command line did not set from the
// configuration file, if there is one, and keeps its target for Complete. It runs before
// Complete, so what the file says goes through the same parsing and validation as flags.
func (f *attachFlags) applyConfigFile(cmd *cobra.Command) error {
	path, namedBy := configfile.Path(cmd.Flags(), os.Getenv)
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
	cfg, err := configfile.Decode(path, data)
	if err != nil {
		return err
	}
	plan := configfile.Plan(cfg, path, cmd)
	if namedBy == "" {
		// Found, not named: it may come with a cloned repository.
		if err := checkTrust(path, data, plan); err != nil {
			return err
		}
	}
	if err := configfile.Apply(cmd, path, plan); err != nil {
		return err
	}
	// A file picked up from the working directory changes what a command line means: say so.
	fmt.Fprintf(cmd.ErrOrStderr(), "remocal: settings from %s\n", path)
	f.fileTarget = cfg.Target
	return nil
}
