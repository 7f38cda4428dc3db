//go:build !linux

package plugin

import (
	"context"
	"os"
)

// serveRemoteDir has nothing to serve with off Linux, where the layer does not run.
func (o *ExecOptions) serveRemoteDir(*session, string) func(context.Context, *os.File) {
	return func(_ context.Context, dev *os.File) { dev.Close() }
}
