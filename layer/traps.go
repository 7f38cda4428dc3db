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
}

// traps returns the filter's syscalls: the network ones, and the opens when the served files
// could not be bind-mounted (every open then costs a round trip to the supervisor).
func traps(opens bool) []seccomp.Trap {
	t := append([]seccomp.Trap(nil), networkTraps...)
	if opens {
		t = append(t, openTraps...)
	}
	return t
}
