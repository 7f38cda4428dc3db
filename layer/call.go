//go:build linux

package layer

import (
	"encoding/binary"
	"errors"
	"log/slog"

	"golang.org/x/sys/unix"

	"github.com/remocal/kubectl-remocal/layer/internal/seccomp"
)

// call is one trapped syscall waiting for its answer. Exactly one of the answer methods must be
// called for it.
type call struct {
	l   *seccomp.Listener
	n   seccomp.Notif
	log *slog.Logger
}

func (c *call) tid() int           { return int(c.n.Pid) }
func (c *call) arg(i int) uint64   { return c.n.Data.Args[i] }
func (c *call) argFD(i int) int    { return int(int32(c.n.Data.Args[i])) }
func (c *call) stillWaiting() bool { return c.l.Valid(c.n.ID) }

// interruption is how the call, waiting on a socket (with a timeout: timed), should end for
// the signals pending for its thread: 0 to go on. The caller then checks that the call still
// waits, which proves the thread read was the call's.
func (c *call) interruption(timed bool) unix.Errno {
	t, err := readThreadSignals(c.tid())
	if err != nil {
		return 0 // the thread is gone, as stillWaiting will say
	}
	return t.interruption(timed)
}

// dup takes a duplicate of the caller's descriptor argument i; the caller closes it. The
// thread's pidfd is opened before the check that the notification still waits: the check then
// proves that the thread id had not been reused by another process when the pidfd was made.
func (c *call) dup(i int) (int, error) {
	pidfd, err := openPidfd(c.tid())
	if err != nil {
		return -1, err
	}
	defer unix.Close(pidfd)
	if !c.stillWaiting() {
		return -1, seccomp.ErrNotifGone
	}
	return unix.PidfdGetfd(pidfd, c.argFD(i), 0)
}

// socket takes a duplicate of the caller's socket argument 0 and describes it. It reports
// false, having passed the call back to the kernel, when that is not a socket we can look at;
// otherwise the caller closes fd.
func (c *call) socket() (fd int, info socketInfo, ok bool) {
	fd, err := c.dup(0)
	if err != nil {
		c.pass()
		return -1, socketInfo{}, false
	}
	if info, err = inspectSocket(fd); err != nil {
		unix.Close(fd)
		c.pass()
		return -1, socketInfo{}, false
	}
	return fd, info, true
}

// pass lets the kernel run the syscall as made.
func (c *call) pass() { c.report(c.l.Continue(c.n.ID)) }

// ret makes the syscall return v.
func (c *call) ret(v int64) { c.report(c.l.Return(c.n.ID, v)) }

// fail makes the syscall fail with errno.
func (c *call) fail(errno unix.Errno) { c.report(c.l.Fail(c.n.ID, errno)) }

func (c *call) report(err error) {
	if err != nil && !errors.Is(err, seccomp.ErrNotifGone) {
		c.log.Error("answer trapped syscall", "nr", c.n.Data.Nr, "err", err)
	}
}

// readSockaddr reads the sockaddr at argument i with length argument j.
func (c *call) readSockaddr(i, j int) ([]byte, error) {
	size := c.arg(j)
	if size > maxSockaddr {
		size = maxSockaddr
	}
	b := make([]byte, size)
	return b, seccomp.ReadMem(c.tid(), c.arg(i), b)
}

// writeSockaddr writes sa to the buffer at argument i whose length is at the pointer argument
// j, truncating as the kernel does, and stores the full length there.
func (c *call) writeSockaddr(i, j int, sa []byte) error {
	capacity, err := seccomp.ReadUint32(c.tid(), c.arg(j))
	if err != nil {
		return err
	}
	n := min(int(capacity), len(sa))
	if err := seccomp.WriteMem(c.tid(), c.arg(i), sa[:n]); err != nil {
		return err
	}
	return seccomp.WriteUint32(c.tid(), c.arg(j), uint32(len(sa)))
}

// writeSockoptInt answers a getsockopt of an int option with v, as the kernel does: to the
// buffer at argument i, truncated to the length at the pointer argument j, which then holds
// what was written. It returns the errno of a bad length or buffer, else 0.
func (c *call) writeSockoptInt(i, j int, v int32) unix.Errno {
	length, err := seccomp.ReadUint32(c.tid(), c.arg(j))
	if err != nil {
		return unix.EFAULT
	}
	if int32(length) < 0 {
		return unix.EINVAL
	}
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], uint32(v))
	n := min(int(length), len(b))
	if seccomp.WriteMem(c.tid(), c.arg(i), b[:n]) != nil || seccomp.WriteUint32(c.tid(), c.arg(j), uint32(n)) != nil {
		return unix.EFAULT
	}
	return 0
}
