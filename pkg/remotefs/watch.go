//go:build linux

package remotefs

import (
	"context"
	"errors"
	"path"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
)

// maxWatchedDirs bounds the directories re-listed each round: a program that walked a large
// volume should not turn into a listing of all of it every second.
const maxWatchedDirs = 256

// watch tells the kernel, every CacheTimeout until ctx ends, of the entries it holds that the
// remote no longer has, or has replaced by another file. Those are the changes a program can
// wait for: the kernel drops the entries at once (FUSE_NOTIFY_DELETE), and an inotify watch on
// such a file or directory fires IN_DELETE_SELF, as in the pod. That is how a ConfigMap
// update shows: the kubelet replaces the `..data` symlink and removes the previous
// timestamped directory, so a program watching its configuration file (through the symlinks,
// as inotify_add_watch follows them) is told, and reads it again. Creations and writes cannot
// be announced: FUSE has no notification that raises those inotify events.
func (f *filesystem) watch(ctx context.Context, root *node) {
	if f.opts.CacheTimeout <= 0 {
		return
	}
	tick := time.NewTicker(f.opts.CacheTimeout)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			f.notifyGone(ctx, root)
		}
	}
}

// notifyGone re-lists the directories that have entries in the kernel, breadth first, and
// notifies the entries gone.
func (f *filesystem) notifyGone(ctx context.Context, root *node) {
	queue := []*fs.Inode{root.EmbeddedInode()}
	for listed := 0; len(queue) > 0 && listed < maxWatchedDirs; listed++ {
		dir := queue[0]
		queue = queue[1:]
		children := dir.Children()
		if len(children) == 0 {
			continue
		}
		dirPath := dir.Operations().(*node).path()
		entries, err := f.remote.ReadDir(ctx, dirPath)
		var errno syscall.Errno
		if err != nil && !(errors.As(err, &errno) && (errno == syscall.ENOENT || errno == syscall.ENOTDIR)) {
			continue // the link, not the directory: try again next round
		}
		remote := make(map[string]uint64, len(entries)) // name: remote inode
		for _, e := range entries {
			remote[e.Name] = e.Stat.Ino
			f.remember(path.Join(dirPath, e.Name), e.Stat)
		}
		for name, child := range children {
			ino, ok := remote[name]
			if ok && ino == child.Operations().(*node).remoteIno {
				if child.IsDir() {
					queue = append(queue, child)
				}
				continue
			}
			f.forget(path.Join(dirPath, name))
			notifyDeleteTree(dir, name, child)
		}
	}
}

// notifyDeleteTree notifies the removal of child, named name in dir, after its own children:
// each file watched below it gets its IN_DELETE_SELF.
func notifyDeleteTree(dir *fs.Inode, name string, child *fs.Inode) {
	for grandName, grandChild := range child.Children() {
		notifyDeleteTree(child, grandName, grandChild)
	}
	_ = dir.NotifyDelete(name, child) // ENOENT when the kernel has let it go already
}
