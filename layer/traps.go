//go:build linux

package layer

import (
	"golang.org/x/sys/unix"

	"github.com/remocal/kubectl-remocal/layer/internal/seccomp"
)

// networkTraps are the syscalls the supervisor always answers.
var networkTraps = []seccomp.Trap{
	{Nr: unix.SYS_CONNECT, NonZeroArg: -1},
	{Nr: unix.SYS_GETPEERNAME, NonZeroArg: -1},
	{Nr: unix.SYS_LISTEN, NonZeroArg: -1},
	{Nr: unix.SYS_SENDTO, NonZeroArg: 4},
	{Nr: unix.SYS_RECVFROM, NonZeroArg: 4},
	// Only an accept that asks for the peer's address: the others have nothing to report.
	{Nr: unix.SYS_ACCEPT4, NonZeroArg: 1},
	// Only getsockopt(SO_ERROR), which reports how a non-blocking connect ended: a parked
	// connect that failed in the pod reads the pod's errno there (see failures).
	{Nr: unix.SYS_GETSOCKOPT, NonZeroArg: -1, Equal: []seccomp.ArgValue{{Arg: 1, Val: unix.SOL_SOCKET}, {Arg: 2, Val: unix.SO_ERROR}}},
}

// traps returns the filter's syscalls: the network ones, and the opens when the served files
// could not be bind-mounted (every open then costs a round trip to the supervisor).
func traps(opens bool) []seccomp.Trap {
	t := append(append([]seccomp.Trap(nil), networkTraps...), archNetworkTraps...)
	if opens {
		t = append(t, openTraps...)
	}
	return t
}
