//go:build linux

// Package seccomp installs a seccomp filter whose chosen syscalls are handed to a user-space
// supervisor (seccomp_unotify(2)), and gives the supervisor what it needs to answer them: the
// notification listener, the target's memory and its file descriptors.
//
// golang.org/x/sys has the constants but not the notification structures, so they are declared
// here with the kernel's layout (include/uapi/linux/seccomp.h).
package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Data is struct seccomp_data: the trapped syscall and its raw arguments.
type Data struct {
	Nr                 int32
	Arch               uint32
	InstructionPointer uint64
	Args               [6]uint64
}

// Notif is struct seccomp_notif: one trapped syscall of one thread.
type Notif struct {
	ID    uint64
	Pid   uint32 // the calling thread's id, in the supervisor's PID namespace
	Flags uint32
	Data  Data
}

// resp is struct seccomp_notif_resp.
type resp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// addFD is struct seccomp_notif_addfd.
type addFD struct {
	ID         uint64
	Flags      uint32
	SrcFD      uint32
	NewFD      uint32
	NewFDFlags uint32
}

// The layouts must match the kernel's or every ioctl fails with EINVAL.
var (
	_ [80 - unsafe.Sizeof(Notif{})]struct{}
	_ [unsafe.Sizeof(Notif{}) - 80]struct{}
	_ [24 - unsafe.Sizeof(resp{})]struct{}
	_ [24 - unsafe.Sizeof(addFD{})]struct{}
)

// ErrNotifGone reports that the notification's thread no longer waits for an answer: it was
// killed, or a signal interrupted the syscall (it will be restarted and trapped again).
var ErrNotifGone = errors.New("seccomp notification no longer valid")

// Install sets no_new_privs and installs filter on the calling thread, returning the listener
// of its notifications. The filter applies to this thread only (no TSYNC: the Go runtime's
// other threads stay free), and from there to whatever it execs and every child and thread of
// that. The caller must hold the thread with runtime.LockOSThread until it execs.
func Install(filter []unix.SockFilter) (int, error) {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return -1, fmt.Errorf("set no_new_privs: %w", err)
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	// Once the supervisor has received a notification, only a fatal signal may end the wait
	// (Linux 5.19): otherwise a signal makes the kernel drop the notification and restart the
	// syscall, and the supervisor, already dialing the pod for a connect, would dial again for
	// the restarted one, to find the socket connected by the first (EISCONN). Older kernels
	// refuse the flag with EINVAL, and go without.
	fd, errno := installFilter(&prog, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER|unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
	if errno == unix.EINVAL {
		fd, errno = installFilter(&prog, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER)
	}
	runtime.KeepAlive(filter)
	if errno != 0 {
		return -1, fmt.Errorf("install seccomp filter: %w", errno)
	}
	return fd, nil
}

func installFilter(prog *unix.SockFprog, flags uintptr) (int, unix.Errno) {
	fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(prog)))
	return int(fd), errno
}

// Supported reports whether the kernel offers user notifications (Linux 5.0) with the ADDFD
// and CONTINUE answers the supervisor relies on (5.9 and 5.14 for ADDFD's SEND flag).
func Supported() error {
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		release := unix.ByteSliceToString(u.Release[:])
		if !atLeast(release, 5, 9) {
			return fmt.Errorf("the kernel is Linux %s; the layer needs 5.9 or newer (seccomp user notification with pidfd_getfd and ADDFD)", release)
		}
	}
	action := uint32(unix.SECCOMP_RET_USER_NOTIF)
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&action)))
	if errno != 0 {
		return fmt.Errorf("the kernel has no seccomp user notification (Linux 5.9 or newer is needed): %w", errno)
	}
	return nil
}

// Listener answers the notifications of one filter.
type Listener struct{ fd int }

// NewListener wraps a listener descriptor; Close closes it.
func NewListener(fd int) *Listener { return &Listener{fd: fd} }

// FD returns the listener's descriptor, for poll.
func (l *Listener) FD() int { return l.fd }

// Close closes the listener. Threads waiting for an answer then get ENOSYS, and so does every
// later trapped syscall of the filtered processes: they fail, they never hang.
func (l *Listener) Close() error { return unix.Close(l.fd) }

// SyncWakeUp asks the kernel to switch straight to the supervisor's thread on each notification
// (Linux 6.6), which saves a scheduler round trip per trapped syscall. Older kernels say EINVAL;
// it is only an optimisation.
func (l *Listener) SyncWakeUp() error {
	return ioctl(l.fd, unix.SECCOMP_IOCTL_NOTIF_SET_FLAGS, uintptr(unix.SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP))
}

// Receive waits for the next notification. ENOENT means the thread went away between the
// kernel's wake-up and the read; the caller skips it.
func (l *Listener) Receive(n *Notif) error {
	*n = Notif{}
	return ioctl(l.fd, unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(n)))
}

// Valid reports whether notification id still waits for an answer: checked after reading the
// target's memory, so that what was read belongs to this syscall (seccomp_unotify(2)).
func (l *Listener) Valid(id uint64) bool {
	return ioctl(l.fd, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, uintptr(unsafe.Pointer(&id))) == nil
}

// Continue lets the kernel run the syscall as the thread made it.
func (l *Listener) Continue(id uint64) error {
	return l.send(resp{ID: id, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE})
}

// Return makes the syscall return val without running it.
func (l *Listener) Return(id uint64, val int64) error { return l.send(resp{ID: id, Val: val}) }

// Fail makes the syscall fail with errno without running it.
func (l *Listener) Fail(id uint64, errno unix.Errno) error {
	return l.send(resp{ID: id, Error: -int32(errno)})
}

func (l *Listener) send(r resp) error {
	err := ioctl(l.fd, unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&r)))
	if errors.Is(err, unix.ENOENT) {
		return ErrNotifGone
	}
	return err
}

// ReturnNewFD installs a copy of fd in the target's descriptor table and makes the syscall
// return its number, atomically (SECCOMP_ADDFD_FLAG_SEND): what open would have returned.
func (l *Listener) ReturnNewFD(id uint64, fd int, cloexec bool) (int, error) {
	a := addFD{ID: id, Flags: unix.SECCOMP_ADDFD_FLAG_SEND, SrcFD: uint32(fd)}
	if cloexec {
		a.NewFDFlags = unix.O_CLOEXEC
	}
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(l.fd), unix.SECCOMP_IOCTL_NOTIF_ADDFD, uintptr(unsafe.Pointer(&a)))
	if errno != 0 {
		if errno == unix.ENOENT {
			return -1, ErrNotifGone
		}
		return -1, fmt.Errorf("seccomp addfd: %w", errno)
	}
	return int(r), nil
}

func ioctl(fd int, req uint, arg uintptr) error {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), arg)
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		default:
			return errno
		}
	}
}

// atLeast reports whether a kernel release ("6.1.0-18-amd64") is at least major.minor. A release
// it cannot read passes: the syscalls themselves will then say.
func atLeast(release string, major, minor int) bool {
	var maj, mnr int
	if _, err := fmt.Sscanf(release, "%d.%d", &maj, &mnr); err != nil {
		return true
	}
	return maj > major || (maj == major && mnr >= minor)
}
