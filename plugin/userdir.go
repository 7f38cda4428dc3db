package plugin

import (
	"fmt"
	"os"
	"path/filepath"
)

// userDir is the plugin's directory under the user's configuration directory
// ($XDG_CONFIG_HOME/remocal, usually ~/.config/remocal): its client keys and the list of
// configuration files the user trusts.
func userDir() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the user's configuration directory: %w", err)
	}
	return filepath.Join(dir, "remocal"), nil
}
