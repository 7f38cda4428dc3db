package sidecarapi

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// DefaultTTL is how long a sidecar waits for a client. Ephemeral containers can never be removed, so
// a sidecar nobody uses must end by itself.
const DefaultTTL = 10 * time.Minute

// DefaultMaxLifetime bounds a sidecar's life even while clients stay connected: a client that
// never lets go (a forgotten terminal) would otherwise keep the pod's ports redirected and the
// sidecar's rights in the pod for good.
const DefaultMaxLifetime = 12 * time.Hour

// The sidecar's flag names, in the order Args writes them.
const (
	flagClientPin   = "client-pin"
	flagPort        = "port"
	flagTTL         = "ttl"
	flagMaxLifetime = "max-lifetime"
	flagDirect      = "direct"
	flagName        = "name"
)

// Flags are the sidecar's command line. Everything the plugin needs to find and reuse a sidecar
// later is in it, because the pod spec keeps it.
type Flags struct {
	// ClientPin is the fingerprint of the only client key accepted ("sha256:...").
	ClientPin string
	// Port is the UDP port of the direct path and the TCP port of the port-forward path.
	Port int
	// TTL is how long the sidecar runs without a client before it exits.
	TTL time.Duration
	// MaxLifetime is how long the sidecar runs at most, clients or not; zero in flags read back
	// from a sidecar of a version that had no maximum.
	MaxLifetime time.Duration
	// Direct also serves QUIC on the pod's addresses, not only on loopback.
	Direct bool
	// Name is the sidecar's container name, for people: another sidecar of the pod that finds
	// one of this one's ports taken names it to its user.
	Name string
}

// NewFlags returns the flags of a sidecar started without any: the defaults.
func NewFlags() Flags {
	return Flags{TTL: DefaultTTL, MaxLifetime: DefaultMaxLifetime}
}

// AddFlags binds f to the sidecar's flags in fs; f's values are the defaults.
func (f *Flags) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&f.ClientPin, flagClientPin, f.ClientPin, "fingerprint (sha256:HEX) of the only client key to accept")
	fs.IntVar(&f.Port, flagPort, f.Port, "UDP (direct) and loopback TCP (port-forward) port to serve QUIC on")
	fs.DurationVar(&f.TTL, flagTTL, f.TTL, "exit after this long without a client")
	fs.DurationVar(&f.MaxLifetime, flagMaxLifetime, f.MaxLifetime, "end every session and exit after this long, clients or not")
	fs.BoolVar(&f.Direct, flagDirect, f.Direct, "also serve QUIC over UDP on the pod's addresses")
	fs.StringVar(&f.Name, flagName, f.Name, "this sidecar's container name, to tell other sidecars of the pod whose a port is")
}

// Args writes f as the sidecar's arguments, every flag as --name=value: a value is never a
// separate argument, which is what lets SplitUnknownFlags set aside the flags a sidecar does not
// know. The values are formatted by the flag package itself, so they parse back as they were.
func (f Flags) Args() []string {
	fs := flag.NewFlagSet("remocal-sidecar", flag.ContinueOnError)
	f.AddFlags(fs)
	names := []string{flagClientPin, flagPort, flagTTL, flagMaxLifetime, flagDirect, flagName}
	args := make([]string, 0, len(names))
	for _, name := range names {
		args = append(args, "--"+name+"="+fs.Lookup(name).Value.String())
	}
	return args
}

// ParseArgs reads the flags of an existing sidecar from its arguments, as the pod spec keeps
// them. A flag the arguments do not name stays zero (a sidecar older than that flag), and one
// this version does not know is ignored (a sidecar newer than this plugin). Each argument is
// read by itself, so a malformed value, reported in the error, leaves the other fields set.
func ParseArgs(args []string) (Flags, error) {
	var f Flags
	fs := flag.NewFlagSet("remocal-sidecar", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	f.AddFlags(fs)
	known, _ := SplitUnknownFlags(fs, args)
	var errs []error
	for _, arg := range known {
		if !strings.HasPrefix(arg, "-") || arg == "--" {
			break // the flags end here, as they do for the sidecar
		}
		if err := fs.Parse([]string{arg}); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return f, fmt.Errorf("sidecar arguments: %w", err)
	}
	return f, nil
}

// SplitUnknownFlags separates from args the flags fs does not define, so that a sidecar image
// older than its plugin still starts: a newer plugin may pass flags for features this sidecar
// lacks (it learns what the sidecar has from the hello's features, not from its flags), and an
// ephemeral container that exits on its command line can never be fixed or restarted. Args
// writes every flag as --name=value, so a flag's value is never a separate argument.
// Everything from "--" or the first non-flag argument on is kept.
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
