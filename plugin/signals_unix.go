//go:build unix

package plugin

import (
	"os"
	"syscall"
)

// programSignals are the signals the plugin passes on to the program it runs: those a terminal,
// a supervisor or a user with kill(1) sends to the foreground program, which must reach it as
// they would without remocal in between.
var programSignals = []os.Signal{
	syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH,
}
