//go:build linux

package layer

import (
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/remocal/kubectl-remocal/layer/internal/seccomp"
)

// open(path, flags, mode) and openat(dirfd, path, flags, mode) of a served file for reading
// return a fresh in-memory copy of its content: each open has its own offset, and the local
// file is never touched. Every other open runs in the kernel.
func (s *Supervisor) open(c *call, pathArg, flagsArg int) {
	if len(s.cfg.Files) == 0 {
		c.pass()
		return
	}
	flags := int(c.arg(flagsArg))
	if flags&unix.O_ACCMODE != unix.O_RDONLY {
		c.pass()
		return
	}
	path, err := seccomp.ReadString(c.tid(), c.arg(pathArg), unix.PathMax)
	if err != nil || !filepath.IsAbs(path) {
		c.pass()
		return
	}
	content, ok := s.cfg.Files[filepath.Clean(path)]
	if !ok || !c.stillWaiting() {
		c.pass()
		return
	}
	fd, err := memFile(path, content)
	if err != nil {
		s.log.Error("serve file", "path", path, "err", err)
		c.pass()
		return
	}
	defer unix.Close(fd)
	if _, err := c.l.ReturnNewFD(c.n.ID, fd, flags&unix.O_CLOEXEC != 0); err != nil {
		c.report(err)
	}
}

// memFile returns a memfd holding content, positioned at its start.
func memFile(name string, content []byte) (int, error) {
	fd, err := unix.MemfdCreate("remocal:"+name, unix.MFD_CLOEXEC)
	if err != nil {
		return -1, err
	}
	for b := content; len(b) > 0; {
		n, err := unix.Write(fd, b)
		if err != nil {
			unix.Close(fd)
			return -1, err
		}
		b = b[n:]
	}
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}
