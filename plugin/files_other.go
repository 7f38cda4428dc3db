//go:build !linux

package plugin

import "os"

// serveRemoteDir has nothing to serve with off Linux, where the layer does not run.
func (o *ExecOptions) serveRemoteDir(*session, string) func(dev *os.File) {
	return func(dev *os.File) { dev.Close() }
}
