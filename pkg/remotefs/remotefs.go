//go:build linux

// Package remotefs serves a directory tree of another machine, the target container's as the
// sidecar reads it, as a FUSE filesystem on a device the layer mounted.
//
// The kernel does the path work: it walks components with lookups, follows symlinks with
// readlink (so the `..data` layout of ConfigMap volumes resolves as in the pod), and lists
// directories; each of those is one request to the sidecar, remembered for CacheTimeout.
// File contents are fetched whole on open and never cached across opens, so a program that
// opens a file again sees what the pod has now. Writes stay in memory until the program
// closes (flushes) or fsyncs the file, then go to the pod whole.
package remotefs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// Remote is the filesystem served: every path is absolute on the remote machine, and a
// failure wraps the remote errno (errors.As with syscall.Errno).
type Remote interface {
	Lstat(ctx context.Context, path string) (wire.FileStat, error)
	Stat(ctx context.Context, path string) (wire.FileStat, error)
	ReadDir(ctx context.Context, path string) ([]wire.DirEntry, error)
	ReadLink(ctx context.Context, path string) (string, error)
	ReadFileLimit(ctx context.Context, path string, limit int64) ([]byte, wire.FileStat, error)
	WriteFile(ctx context.Context, path string, data []byte, mode uint32) (wire.FileStat, error)
	Mkdir(ctx context.Context, path string, mode uint32) (wire.FileStat, error)
	Remove(ctx context.Context, path string, dir bool) error
	Rename(ctx context.Context, from, to string) error
	Symlink(ctx context.Context, target, path string) (wire.FileStat, error)
}

// Options says what to serve and how.
type Options struct {
	// Root is the remote directory served at the mount point.
	Root string
	// Writable allows creating, writing, renaming and removing; otherwise those fail with
	// EROFS (the layer mounts the filesystem read-only as well).
	Writable bool
	// MaxFileSize bounds a file's content: opening a larger one fails with EFBIG.
	MaxFileSize int64
	// Absent, if set, makes the remote paths it matches look absent (ENOENT).
	Absent func(path string) bool
	// CacheTimeout is how long the kernel and we keep names and attributes before asking
	// again: how late a change in the pod can be seen. Zero asks every time.
	CacheTimeout time.Duration
	// OnTooLarge, if set, is told of each file refused for its size, to tell the user why.
	OnTooLarge func(path string, limit int64)
	// Log gets the failures that are not the remote filesystem's answer; nil discards them.
	Log *slog.Logger
}

// Serve serves the FUSE device dev, already mounted, until the mount goes away. It takes dev
// over, and closes it. The remote is watched for gone entries (watch) until ctx ends or the
// mount goes, whichever is first.
func Serve(ctx context.Context, dev *os.File, remote Remote, opts Options) error {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	fsys := &filesystem{remote: patient{remote}, opts: opts, stats: map[string]cachedStat{}, inos: map[inoKey]uint64{}}
	// go-fuse closes the descriptor it serves when it is done: give it a duplicate of its own,
	// so that dev's, closed by its owner or the garbage collector, is never closed twice (the
	// second close would hit whatever reused the number, another mount's device included).
	fd, err := unix.FcntlInt(dev.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("duplicate the FUSE device: %w", err)
	}
	dev.Close()
	timeout := opts.CacheTimeout
	root := &node{fsys: fsys}
	server, err := fuse.NewServer(fs.NewNodeFS(root, &fs.Options{
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
	}), "/dev/fd/"+strconv.Itoa(fd), &fuse.MountOptions{
		Name:   "remocal",
		FsName: "remocal:" + opts.Root,
		// Reads come whole from memory: larger requests mean fewer round trips to us.
		MaxReadAhead: 1 << 20,
	})
	if err != nil {
		unix.Close(fd)
		return err
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	go fsys.watch(ctx, root)
	server.Serve()
	return nil
}

// filesystem is what the nodes of one mount share.
type filesystem struct {
	remote Remote
	opts   Options

	mu sync.Mutex
	// stats are the attributes a directory listing brought, for the lookups that follow it
	// (`ls -l` lists, then looks up every name).
	stats map[string]cachedStat
	// inos gives each file a number of its own for as long as we serve, by path, type and
	// remote inode: the kernel and the program see the same inode each time they look the
	// same file up again, and another one once the remote replaced it.
	inos map[inoKey]uint64
}

type cachedStat struct {
	stat    wire.FileStat
	expires time.Time
}

type inoKey struct {
	path      string
	kind      uint32
	remoteIno uint64
}

// ino returns the inode number of path as a file of st's type.
func (f *filesystem) ino(path string, st wire.FileStat) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := inoKey{path, st.Mode & syscall.S_IFMT, st.Ino}
	if n, ok := f.inos[key]; ok {
		return n
	}
	n := uint64(len(f.inos)) + 2 // 1 is the root's
	f.inos[key] = n
	return n
}

func (f *filesystem) remember(path string, st wire.FileStat) {
	if f.opts.CacheTimeout <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats[path] = cachedStat{stat: st, expires: time.Now().Add(f.opts.CacheTimeout)}
}

func (f *filesystem) forget(path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.stats, path)
}

// lstat answers from a recent listing, else asks.
func (f *filesystem) lstat(ctx context.Context, path string) (wire.FileStat, error) {
	f.mu.Lock()
	c, ok := f.stats[path]
	if ok && time.Now().After(c.expires) {
		delete(f.stats, path)
		ok = false
	}
	f.mu.Unlock()
	if ok {
		return c.stat, nil
	}
	if path == f.opts.Root {
		return f.remote.Stat(ctx, path) // the mount point follows symlinks, as a mount does
	}
	return f.remote.Lstat(ctx, path)
}

// errno is the error to give the program for err.
func (f *filesystem) errno(op, path string, err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return syscall.ETIMEDOUT
	}
	f.opts.Log.Error("remote file operation", "op", op, "path", path, "err", err)
	return syscall.EIO
}

// fillAttr copies remote attributes into a FUSE attribute.
func fillAttr(out *fuse.Attr, st wire.FileStat) {
	out.Mode = st.Mode
	out.Size = uint64(st.Size)
	out.Blocks = uint64(st.Blocks)
	out.Nlink = st.Nlink
	out.Owner = fuse.Owner{Uid: st.UID, Gid: st.GID}
	out.Rdev = uint32(st.Rdev)
	atime, mtime, ctime := time.Unix(0, st.Atime), time.Unix(0, st.Mtime), time.Unix(0, st.Ctime)
	out.SetTimes(&atime, &mtime, &ctime)
}

// node is a file or directory of the remote tree; its path is where the kernel last found it.
type node struct {
	fs.Inode
	fsys *filesystem
	// remoteIno is the remote file's inode number when it was looked up: another number
	// under the same name is another file (a symlink replaced by a rename, as the kubelet
	// updates a ConfigMap volume).
	remoteIno uint64
}

var (
	_ fs.NodeLookuper   = (*node)(nil)
	_ fs.NodeGetattrer  = (*node)(nil)
	_ fs.NodeSetattrer  = (*node)(nil)
	_ fs.NodeReadlinker = (*node)(nil)
	_ fs.NodeReaddirer  = (*node)(nil)
	_ fs.NodeOpener     = (*node)(nil)
	_ fs.NodeAccesser   = (*node)(nil)
	_ fs.NodeCreater    = (*node)(nil)
	_ fs.NodeMkdirer    = (*node)(nil)
	_ fs.NodeSymlinker  = (*node)(nil)
	_ fs.NodeUnlinker   = (*node)(nil)
	_ fs.NodeRmdirer    = (*node)(nil)
	_ fs.NodeRenamer    = (*node)(nil)
)

func (n *node) path() string { return path.Join(n.fsys.opts.Root, n.Path(nil)) }

func (n *node) child(name string) string { return path.Join(n.path(), name) }

// newChild makes the inode of name, which has attributes st, and fills out.
func (n *node) newChild(ctx context.Context, name string, st wire.FileStat, out *fuse.EntryOut) *fs.Inode {
	p := n.child(name)
	fillAttr(&out.Attr, st)
	ino := n.fsys.ino(p, st)
	out.Ino = ino
	return n.NewInode(ctx, &node{fsys: n.fsys, remoteIno: st.Ino}, fs.StableAttr{Mode: st.Mode & syscall.S_IFMT, Ino: ino})
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	p := n.child(name)
	if n.fsys.opts.Absent != nil && n.fsys.opts.Absent(p) {
		return nil, syscall.ENOENT
	}
	st, err := n.fsys.lstat(ctx, p)
	if err != nil {
		return nil, n.fsys.errno("lstat", p, err)
	}
	return n.newChild(ctx, name, st, out), 0
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if h, ok := f.(*handle); ok {
		return h.Getattr(ctx, out)
	}
	st, err := n.fsys.lstat(ctx, n.path())
	if err != nil {
		return n.fsys.errno("lstat", n.path(), err)
	}
	fillAttr(&out.Attr, st)
	return 0
}

// Access leaves the decision to the remote side, which makes it on each operation: the
// program's uid means nothing there.
func (n *node) Access(context.Context, uint32) syscall.Errno { return 0 }

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	target, err := n.fsys.remote.ReadLink(ctx, n.path())
	if err != nil {
		return nil, n.fsys.errno("readlink", n.path(), err)
	}
	return []byte(target), 0
}

func (n *node) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	dir := n.path()
	entries, err := n.fsys.remote.ReadDir(ctx, dir)
	if err != nil {
		return nil, n.fsys.errno("readdir", dir, err)
	}
	list := make([]fuse.DirEntry, 0, len(entries))
	for _, e := range entries {
		p := path.Join(dir, e.Name)
		if n.fsys.opts.Absent != nil && n.fsys.opts.Absent(p) {
			continue
		}
		n.fsys.remember(p, e.Stat)
		list = append(list, fuse.DirEntry{Name: e.Name, Mode: e.Stat.Mode, Ino: n.fsys.ino(p, e.Stat)})
	}
	return fs.NewListDirStream(list), 0
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	p := n.path()
	writing := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	if writing && !n.fsys.opts.Writable {
		return nil, 0, syscall.EROFS
	}
	h := &handle{node: n, writable: writing}
	if writing && flags&syscall.O_TRUNC != 0 {
		st, err := n.fsys.lstat(ctx, p)
		if err != nil {
			return nil, 0, n.fsys.errno("lstat", p, err)
		}
		h.stat, h.dirty = st, true
		return h, 0, 0
	}
	data, st, err := n.fsys.remote.ReadFileLimit(ctx, p, n.fsys.opts.MaxFileSize)
	if errors.Is(err, syscall.EFBIG) && n.fsys.opts.OnTooLarge != nil {
		n.fsys.opts.OnTooLarge(p, n.fsys.opts.MaxFileSize)
	}
	if err != nil {
		return nil, 0, n.fsys.errno("read", p, err)
	}
	h.data, h.stat = data, st
	return h, 0, 0
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	// Times set to now come with every write anyway (touch does this); other times, modes
	// and owners are not carried to the pod.
	timeNotNow := (in.Valid&fuse.FATTR_ATIME != 0 && in.Valid&fuse.FATTR_ATIME_NOW == 0) ||
		(in.Valid&fuse.FATTR_MTIME != 0 && in.Valid&fuse.FATTR_MTIME_NOW == 0)
	if in.Valid&(fuse.FATTR_MODE|fuse.FATTR_UID|fuse.FATTR_GID) != 0 || timeNotNow {
		return syscall.ENOTSUP
	}
	if size, ok := in.GetSize(); ok {
		if !n.fsys.opts.Writable {
			return syscall.EROFS
		}
		// The file is held whole in memory: a length past the bound (a preallocating
		// ftruncate) is refused as a write past it would be.
		if limit := n.fsys.opts.MaxFileSize; limit > 0 && int64(size) > limit {
			return syscall.EFBIG
		}
		if h, isOurs := f.(*handle); isOurs {
			h.truncate(int(size))
		} else if errno := n.truncate(ctx, int64(size)); errno != 0 {
			return errno
		}
	}
	return n.Getattr(ctx, f, out)
}

// truncate changes the length of a file nobody has open here.
func (n *node) truncate(ctx context.Context, size int64) syscall.Errno {
	p := n.path()
	data, _, err := n.fsys.remote.ReadFileLimit(ctx, p, max(size, n.fsys.opts.MaxFileSize))
	if err != nil {
		return n.fsys.errno("read", p, err)
	}
	if int64(len(data)) > size {
		data = data[:size]
	} else {
		data = append(data, make([]byte, size-int64(len(data)))...)
	}
	n.fsys.forget(p)
	if _, err := n.fsys.remote.WriteFile(ctx, p, data, 0); err != nil {
		return n.fsys.errno("write", p, err)
	}
	return 0
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if !n.fsys.opts.Writable {
		return nil, nil, 0, syscall.EROFS
	}
	p := n.child(name)
	st, err := n.fsys.remote.WriteFile(ctx, p, nil, mode&0o7777)
	if err != nil {
		return nil, nil, 0, n.fsys.errno("create", p, err)
	}
	child := n.newChild(ctx, name, st, out)
	return child, &handle{node: child.Operations().(*node), writable: true, stat: st}, 0, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if !n.fsys.opts.Writable {
		return nil, syscall.EROFS
	}
	p := n.child(name)
	st, err := n.fsys.remote.Mkdir(ctx, p, mode&0o7777)
	if err != nil {
		return nil, n.fsys.errno("mkdir", p, err)
	}
	return n.newChild(ctx, name, st, out), 0
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if !n.fsys.opts.Writable {
		return nil, syscall.EROFS
	}
	p := n.child(name)
	st, err := n.fsys.remote.Symlink(ctx, target, p)
	if err != nil {
		return nil, n.fsys.errno("symlink", p, err)
	}
	return n.newChild(ctx, name, st, out), 0
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	return n.remove(ctx, name, false)
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	return n.remove(ctx, name, true)
}

func (n *node) remove(ctx context.Context, name string, dir bool) syscall.Errno {
	if !n.fsys.opts.Writable {
		return syscall.EROFS
	}
	p := n.child(name)
	n.fsys.forget(p)
	return n.fsys.errno("remove", p, n.fsys.remote.Remove(ctx, p, dir))
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if !n.fsys.opts.Writable {
		return syscall.EROFS
	}
	if flags != 0 {
		return syscall.EINVAL // RENAME_NOREPLACE and RENAME_EXCHANGE are not carried
	}
	to, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	from, dst := n.child(name), to.child(newName)
	n.fsys.forget(from)
	n.fsys.forget(dst)
	return n.fsys.errno("rename", from, n.fsys.remote.Rename(ctx, from, dst))
}

// handle is an open file: its whole content, read at open, and whether the program changed
// it since the content last went to the pod.
type handle struct {
	node     *node
	writable bool

	mu    sync.Mutex
	data  []byte
	stat  wire.FileStat
	dirty bool
}

var (
	_ fs.FileReader    = (*handle)(nil)
	_ fs.FileWriter    = (*handle)(nil)
	_ fs.FileFlusher   = (*handle)(nil)
	_ fs.FileFsyncer   = (*handle)(nil)
	_ fs.FileReleaser  = (*handle)(nil)
	_ fs.FileGetattrer = (*handle)(nil)
)

func (h *handle) Read(_ context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if off >= int64(len(h.data)) {
		return fuse.ReadResultData(nil), 0
	}
	n := copy(dest, h.data[off:])
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *handle) Write(_ context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if !h.writable {
		return 0, syscall.EBADF
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	end := off + int64(len(data))
	if limit := h.node.fsys.opts.MaxFileSize; limit > 0 && end > limit {
		return 0, syscall.EFBIG
	}
	if end > int64(len(h.data)) {
		h.data = append(h.data, make([]byte, end-int64(len(h.data)))...)
	}
	copy(h.data[off:], data)
	h.dirty = true
	return uint32(len(data)), 0
}

func (h *handle) truncate(size int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if size < len(h.data) {
		h.data = h.data[:size]
	} else {
		h.data = append(h.data, make([]byte, size-len(h.data))...)
	}
	h.dirty = true
}

func (h *handle) Getattr(_ context.Context, out *fuse.AttrOut) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.stat
	st.Size = int64(len(h.data))
	fillAttr(&out.Attr, st)
	return 0
}

// Flush runs on every close of a descriptor of the file: the bytes go to the pod then.
func (h *handle) Flush(ctx context.Context) syscall.Errno { return h.upload(ctx) }

func (h *handle) Fsync(ctx context.Context, _ uint32) syscall.Errno { return h.upload(ctx) }

// Release comes after the last close; Flush has usually sent everything already.
func (h *handle) Release(ctx context.Context) syscall.Errno { return h.upload(ctx) }

func (h *handle) upload(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.dirty {
		return 0
	}
	p := h.node.path()
	h.node.fsys.forget(p)
	st, err := h.node.fsys.remote.WriteFile(ctx, p, h.data, 0)
	if err != nil {
		return h.node.fsys.errno("write", p, err)
	}
	h.stat, h.dirty = st, false
	return 0
}
