//go:build linux

package layer

import (
	"golang.org/x/sys/unix"

	"github.com/remocal/kubectl-remocal/layer/internal/seccomp"
)

var openTraps = []seccomp.Trap{
	{Nr: unix.SYS_OPENAT, NonZeroArg: -1},
}

// archNetworkTraps: arm64 has accept4 only.
var archNetworkTraps []seccomp.Trap
