//go:build linux

package layer

import (
	"time"

	"golang.org/x/sys/unix"
)

// waitPollMillis is how long one wait of a blocking call lasts before checking that the
// program still waits: it may have been killed, or (before Linux 5.19) a signal may have taken
// the call away; or a signal may wait for it, which with WAIT_KILLABLE_RECV the kernel delivers
// only once the call is answered.
const waitPollMillis = 100

// blockingCall tells whether a receive on the program's socket fd, with the call's flags,
// would wait for data, and until when (zero: no limit, else the socket's SO_RCVTIMEO).
func blockingCall(fd, flags int) (blocking bool, deadline time.Time, errno unix.Errno) {
	status, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return false, time.Time{}, errnoOf(err)
	}
	if status&unix.O_NONBLOCK != 0 || flags&unix.MSG_DONTWAIT != 0 {
		return false, time.Time{}, 0
	}
	if tv, err := unix.GetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO); err == nil && (tv.Sec != 0 || tv.Usec != 0) {
		deadline = time.Now().Add(time.Duration(tv.Nano()))
	}
	return true, deadline, 0
}

// waitReadable waits until fd is readable while the program waits in c, and until deadline
// (zero: no limit). It returns 0 when fd is readable, EAGAIN at the deadline (what the
// socket's timeout makes the kernel return), EINTR or ERESTARTSYS when a signal waits for the
// program's thread (see threadSignals.interruption), and EINTR when the program no longer
// waits or the supervisor is closing. The caller answers the call with it if it still waits.
func (s *Supervisor) waitReadable(c *call, fd int, deadline time.Time) unix.Errno {
	for {
		wait := waitPollMillis
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return unix.EAGAIN
			}
			wait = min(wait, int(left.Milliseconds())+1)
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, wait)
		if err != nil && err != unix.EINTR {
			return errnoOf(err)
		}
		if n > 0 {
			return 0
		}
		if s.ctx.Err() != nil {
			return unix.EINTR
		}
		signalled := c.interruption(!deadline.IsZero())
		if !c.stillWaiting() {
			return unix.EINTR
		}
		if signalled != 0 {
			return signalled
		}
	}
}
