package sidecar

import (
	"flag"
	"strings"
)

// SplitUnknownFlags separates from args the flags fs does not define, so that a sidecar image
// older than its plugin still starts: a newer plugin may pass flags for features this sidecar
// lacks (it learns what the sidecar has from the hello's features, not from its flags), and an
// ephemeral container that exits on its command line can never be fixed or restarted. The
// plugin writes every flag as --name=value (or --name for a boolean), so a flag's value is never
// a separate argument. Everything from "--" or the first non-flag argument on is kept.
func SplitUnknownFlags(fs *flag.FlagSet, args []string) (known, unknown []string) {
	for i, arg := range args {
		if arg == "--" || !strings.HasPrefix(arg, "-") {
			return append(known, args[i:]...), unknown
		}
		name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if name == "help" || name == "h" || fs.Lookup(name) != nil {
			known = append(known, arg)
		} else {
			unknown = append(unknown, arg)
		}
	}
	return known, unknown
}
