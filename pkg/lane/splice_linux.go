package lane

import (
	"errors"
	"io"
	"net"

	"golang.org/x/sys/unix"
)

// splicePipe is the kernel buffer that splice(2) moves bytes through, from one socket to
// another.
type splicePipe struct{ r, w int }

func newSplicePipe() (*splicePipe, error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, err
	}
	// A pipe holds 64 KiB by default; as much as one fill moves, where the system allows.
	_, _ = unix.FcntlInt(uintptr(fds[1]), unix.F_SETPIPE_SZ, copyBuffer)
	return &splicePipe{r: fds[0], w: fds[1]}, nil
}

func (p *splicePipe) close() {
	unix.Close(p.r)
	unix.Close(p.w)
}

// fill moves what src has, up to max bytes, into the empty pipe, waiting for some: io.EOF at
// the end of src's stream.
func (p *splicePipe) fill(src *net.TCPConn, max int) (int, error) {
	rc, err := src.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int64
	var serr error
	err = rc.Read(func(fd uintptr) bool {
		n, serr = unix.Splice(int(fd), nil, p.w, nil, max, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
		return !errors.Is(serr, unix.EAGAIN)
	})
	switch {
	case err != nil:
		return 0, err
	case serr != nil:
		return 0, serr
	case n == 0:
		return 0, io.EOF
	}
	return int(n), nil
}

// drain moves the n bytes in the pipe to dst, waiting while dst cannot take them.
func (p *splicePipe) drain(dst *net.TCPConn, n int) error {
	rc, err := dst.SyscallConn()
	if err != nil {
		return err
	}
	for n > 0 {
		var m int64
		var serr error
		err = rc.Write(func(fd uintptr) bool {
			m, serr = unix.Splice(p.r, nil, int(fd), nil, n, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
			return !errors.Is(serr, unix.EAGAIN)
		})
		if err != nil {
			return err
		}
		if serr != nil {
			return serr
		}
		n -= int(m)
	}
	return nil
}
