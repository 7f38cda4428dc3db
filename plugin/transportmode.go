package plugin

import (
	"fmt"
	"slices"
)

// transportMode is how the plugin reaches the sidecar: the value of --transport, and of
// "transport" in the configuration file, which sets that flag.
type transportMode string

const (
	// transportAuto dials the pod IP directly when it answers, else through a port-forward.
	transportAuto        transportMode = "auto"
	transportDirect      transportMode = "direct"
	transportPortForward transportMode = "port-forward"
)

// transportModes are the values of --transport.
var transportModes = []transportMode{transportAuto, transportDirect, transportPortForward}

// Set takes a --transport value; any other is refused while the command line (or the
// configuration file) is read.
func (m *transportMode) Set(s string) error {
	if !slices.Contains(transportModes, transportMode(s)) {
		return &flagValueError{fmt.Sprintf("--transport must be %s, %s or %s, not %q", transportAuto, transportDirect, transportPortForward, s)}
	}
	*m = transportMode(s)
	return nil
}

func (m *transportMode) String() string { return string(*m) }

// Type is what --help shows of the value: "string", as for the flags around it.
func (m *transportMode) Type() string { return "string" }

// flagValueError is a flag value's refusal that already names the flag and what it takes, as
// Validate's errors do: the command line's error handler shows it without pflag's
// `invalid argument "x" for "--flag" flag:` before it.
type flagValueError struct{ msg string }

func (e *flagValueError) Error() string { return e.msg }
