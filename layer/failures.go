//go:build linux

package layer

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// failures are the failed connects of parked sockets that the program has not read yet, by
// socket. The kernel's socket can only show a reset (see disconnect); the program reads the
// pod's errno instead, once, from SO_ERROR or from a connect made again, as it would the
// kernel's.
type failures struct {
	mu sync.Mutex
	m  map[uint64]unix.Errno
}

// put records that socket ino's connect failed with errno, until the program reads it or for
// as long as an unclaimed dial's result waits.
func (f *failures) put(ino uint64, errno unix.Errno) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[uint64]unix.Errno{}
	}
	f.m[ino] = errno
	time.AfterFunc(unclaimedResult, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.m[ino] == errno {
			delete(f.m, ino)
		}
	})
}

// take returns and forgets socket ino's unread failure, if any.
func (f *failures) take(ino uint64) (unix.Errno, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	errno, ok := f.m[ino]
	delete(f.m, ino)
	return errno, ok
}

// empty reports whether no failure waits to be read.
func (f *failures) empty() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m) == 0
}

// getsockopt(fd, SOL_SOCKET, SO_ERROR, val, len), the only getsockopt trapped: for a parked
// socket whose connect failed, the pod's errno, read once; the kernel answers everything else.
func (s *Supervisor) getsockopt(c *call) {
	if s.failures.empty() {
		c.pass() // the common case: no look at the socket
		return
	}
	fd, info, ok := c.socket()
	if !ok {
		return
	}
	defer unix.Close(fd)
	errno, ok := s.takeFailure(fd, info.ino)
	if !ok {
		c.pass()
		return
	}
	// The kernel's own pending error (the reset) is read away with it, as SO_ERROR would.
	_, _ = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if errno := c.writeSockoptInt(3, 4, int32(errno)); errno != 0 {
		c.fail(errno)
		return
	}
	c.ret(0)
}

// takeFailure takes the failure of the program's socket fd (inode ino) for the program to read,
// once the socket shows it: the failure is recorded just before the socket is disconnected,
// and until then the connect is, as far as the program can tell, still under way.
func (s *Supervisor) takeFailure(fd int, ino uint64) (unix.Errno, bool) {
	if inProgress(fd) {
		return 0, false
	}
	return s.failures.take(ino)
}

// inProgress tells whether the TCP socket fd is still connecting (SYN_SENT).
func inProgress(fd int) bool {
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	return err == nil && info.State == unix.BPF_TCP_SYN_SENT
}
