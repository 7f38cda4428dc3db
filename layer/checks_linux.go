//go:build linux

package layer

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/remocal/kubectl-remocal/layer/internal/seccomp"
)

// What this machine lets the layer do, for `kubectl remocal doctor`. Each function is the very
// check that New and the helper act on, so doctor cannot tell a story exec does not live by.

// Platform names the operating system, kernel release and architecture.
func Platform() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "Linux (uname: " + err.Error() + ") " + runtime.GOARCH
	}
	return fmt.Sprintf("Linux %s %s", unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Machine[:]))
}

// CheckSeccomp reports whether the kernel has seccomp user notification (Linux 5.9 or newer),
// which every program under the layer needs.
func CheckSeccomp() error { return seccomp.Supported() }

// CheckPtrace reports whether Yama lets the supervisor take descriptors from the program
// (pidfd_getfd needs ptrace access to it).
func CheckPtrace() error { return checkPtraceScope() }

// CheckUserNamespaces reports whether the helper can get the user and mount namespaces that
// the pod's files and hidden paths need, by starting self (the plugin's executable, which
// handles HelperArg) in them. The error wraps ErrNoUserNamespaces.
func CheckUserNamespaces(self string) error { return userNamespaces(self) }

// CheckFUSE reports whether the user may open /dev/fuse, which the pod's files are served
// through. The error wraps ErrNoFUSE.
func CheckFUSE() error { return checkFUSE() }

func checkFUSE() error {
	if err := unix.Access("/dev/fuse", unix.R_OK|unix.W_OK); err != nil {
		return fmt.Errorf("%w: /dev/fuse: %v", ErrNoFUSE, err)
	}
	return nil
}
