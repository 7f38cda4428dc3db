package plugin

import (
	"fmt"
	"slices"

	"github.com/remocal/kubectl-remocal/plugin/internal/attach"
)

// transportFlag is --transport as a pflag.Value: a value that is none of attach.Transports is
// refused while the command line (or the configuration file, which sets the flag) is read.
type transportFlag attach.Transport

// Set takes a --transport value.
func (m *transportFlag) Set(s string) error {
	if !slices.Contains(attach.Transports(), attach.Transport(s)) {
		return &flagValueError{fmt.Sprintf("--transport must be %s, %s or %s, not %q", attach.TransportAuto, attach.TransportDirect, attach.TransportPortForward, s)}
	}
	*m = transportFlag(s)
	return nil
}

func (m *transportFlag) String() string { return string(*m) }

// Type is what --help shows of the value: "string", as for the flags around it.
func (m *transportFlag) Type() string { return "string" }

// flagValueError is a flag value's refusal that already names the flag and what it takes, as
// Validate's errors do: the command line's error handler shows it without pflag's
// `invalid argument "x" for "--flag" flag:` before it.
type flagValueError struct{ msg string }

func (e *flagValueError) Error() string { return e.msg }
