//go:build linux

package layer

import (
	"golang.org/x/sys/unix"

	"github.com/remocal/kubectl-remocal/layer/internal/seccomp"
)

// openTraps: open exists only on x86-64 (where musl still uses it).
var openTraps = []seccomp.Trap{
	{Nr: unix.SYS_OPENAT, NonZeroArg: -1},
	{Nr: unix.SYS_OPEN, NonZeroArg: -1},
}

// archNetworkTraps: accept exists beside accept4 on x86-64.
var archNetworkTraps = []seccomp.Trap{
	{Nr: unix.SYS_ACCEPT, NonZeroArg: 1},
}
