package plugin

import (
	"os"
	"syscall"
)

// programSignals are the signals the plugin passes on to the program it runs. Windows has no
// SIGUSR1/2 or SIGWINCH; Go delivers Ctrl-C as os.Interrupt and the console's close, logoff and
// shutdown events as SIGTERM.
var programSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}
