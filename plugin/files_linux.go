//go:build linux

package plugin

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"

	"github.com/remocal/kubectl-remocal/pkg/remotefs"
	"github.com/remocal/kubectl-remocal/plugin/internal/attach"
)

// remoteCacheTimeout is how long names and attributes of the pod's files are trusted before
// asking again: a file the kubelet updates (a ConfigMap edit) is seen at most this late,
// and a program walking a directory asks once per name, not once per call.
const remoteCacheTimeout = time.Second

// serveRemoteDir returns what serves the pod's directory dir on a FUSE device.
func (o *ExecOptions) serveRemoteDir(sess *attach.Live, dir string) func(ctx context.Context, dev *os.File) {
	log := slog.New(logr.ToSlogHandler(klog.Background().WithName("files")))
	opts := remotefs.Options{
		Root:         dir,
		Writable:     o.FSMode == fsModeWrite,
		MaxFileSize:  o.maxFileSize,
		Absent:       o.absent,
		CacheTimeout: remoteCacheTimeout,
		Log:          log,
		OnTooLarge: func(path string, limit int64) {
			fmt.Fprintf(o.ErrOut, "remocal: the pod's %s is larger than --fs-max-file-size (%d bytes): its open fails with EFBIG\n", path, limit)
		},
	}
	return func(ctx context.Context, dev *os.File) {
		if err := remotefs.Serve(ctx, dev, sess, opts); err != nil {
			log.Error("serve the pod's files", "dir", dir, "err", err)
		}
	}
}
