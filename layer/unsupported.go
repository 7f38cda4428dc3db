//go:build !linux

package layer

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
)

// ErrUnsupported: seccomp user notification exists only on Linux.
var ErrUnsupported = errors.New("running a program under the layer needs Linux (seccomp user notification); on " + runtime.GOOS + " use --env-file or port-forward")

// Available fails off Linux: there is no seccomp user notification to run a program under.
func Available() error { return ErrUnsupported }

// Supervisor is unavailable off Linux.
type Supervisor struct{}

// New fails off Linux.
func New(Config) (*Supervisor, error) { return nil, ErrUnsupported }

// Command fails off Linux.
func (*Supervisor) Command(argv, env, programEnv []string) (*exec.Cmd, error) {
	return nil, ErrUnsupported
}

// Close does nothing.
func (*Supervisor) Close() error { return nil }

// HelperMain fails off Linux.
func HelperMain([]string) int {
	fmt.Fprintln(os.Stderr, ErrUnsupported)
	return 126
}

// Listening fails off Linux.
func Listening(uint16) (bool, error) { return false, ErrUnsupported }

// ExpectArrival does nothing off Linux.
func (*Supervisor) ExpectArrival(local, client netip.AddrPort) (done func()) { return func() {} }
