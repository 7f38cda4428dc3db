//go:build !linux

package plugin

import "os"

// passSignal gives the program a signal the plugin received.
func passSignal(p *os.Process, sig os.Signal) { _ = p.Signal(sig) }
