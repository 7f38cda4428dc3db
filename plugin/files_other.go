//go:build !linux

package plugin

import (
	"context"
	"os"

	"github.com/remocal/kubectl-remocal/plugin/internal/attach"
)

// serveRemoteDir has nothing to serve with off Linux, where the layer does not run.
func (o *ExecOptions) serveRemoteDir(*attach.Live, string) func(context.Context, *os.File) {
	return func(_ context.Context, dev *os.File) { dev.Close() }
}
