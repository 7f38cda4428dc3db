package sidecar

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// OwnerOpenerArg, as the first argument, makes the sidecar binary the owner opener (see
// RunOwnerOpener) instead of the sidecar.
const OwnerOpenerArg = "--open-as-owner"

// ownerOpenTimeout bounds one start of the owner opener.
const ownerOpenTimeout = 5 * time.Second

// openProc opens the file name (environ, root) of process pid under procRoot with flags.
//
// The kernel lets a process open another's environ or follow its root only with
// CAP_SYS_PTRACE, or with the same user and group as the other. The sidecar runs as root but
// gets CAP_SYS_PTRACE only where Pod Security allows adding it (privileged); under baseline, a
// target running as another user is out of its reach. So when the open is refused, a child of
// the sidecar started with the target's user and group (CAP_SETUID and CAP_SETGID are among the
// runtime's defaults) opens the file and hands the descriptor back; an open descriptor serves
// whoever holds it.
func openProc(ctx context.Context, procRoot string, pid int, name string, flags int) (int, error) {
	path := filepath.Join(procRoot, strconv.Itoa(pid), name)
	fd, err := openDirect(path, flags)
	if !refused(err) {
		return fd, err
	}
	return openProcAsOwner(ctx, procRoot, pid, path, flags, err)
}

// openDirect opens path with flags as the sidecar itself.
func openDirect(path string, flags int) (int, error) {
	fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0)
	return fd, wrapPathErr(path, err)
}

// refused tells an open the kernel refused for want of rights, which the owner may have.
func refused(err error) bool {
	return errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)
}

// openProcAsOwner opens path, a file of process pid that the sidecar was refused (refusal),
// through the owner opener started as pid's user and group.
func openProcAsOwner(ctx context.Context, procRoot string, pid int, path string, flags int, refusal error) (int, error) {
	uid, gid, err := processOwner(procRoot, pid)
	if err != nil || uid == uint32(os.Geteuid()) {
		return -1, refusal // another user would not help
	}
	fd, err := openAsOwner(ctx, path, flags, uid, gid)
	if err != nil {
		return -1, fmt.Errorf("%w; as its owner (uid %d, gid %d): %w", refusal, uid, gid, err)
	}
	return fd, nil
}

func wrapPathErr(path string, err error) error {
	if err == nil {
		return nil
	}
	return &os.PathError{Op: "open", Path: path, Err: err}
}

// processOwner reads the real user and group of pid from its status, which anyone may read.
func processOwner(procRoot string, pid int) (uid, gid uint32, err error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, 0, err
	}
	var found int
	lines := bufio.NewScanner(bytes.NewReader(b))
	for lines.Scan() {
		key, rest, _ := strings.Cut(lines.Text(), ":")
		fields := strings.Fields(rest)
		if len(fields) == 0 || (key != "Uid" && key != "Gid") {
			continue
		}
		id, err := strconv.ParseUint(fields[0], 10, 32)
		if err != nil {
			return 0, 0, fmt.Errorf("process %d status: %s: %w", pid, key, err)
		}
		if key == "Uid" {
			uid = uint32(id)
		} else {
			gid = uint32(id)
		}
		found++
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("process %d status: no Uid or Gid line", pid)
	}
	return uid, gid, nil
}

// openAsOwner starts the sidecar's own binary as uid and gid, with no supplementary groups,
// to open path, and receives the descriptor on a socket pair.
func openAsOwner(ctx context.Context, path string, flags int, uid, gid uint32) (int, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket pair: %w", err)
	}
	ours := os.NewFile(uintptr(pair[0]), "owner-opener")
	defer ours.Close()
	theirs := os.NewFile(uintptr(pair[1]), "owner-opener")

	ctx, cancel := context.WithTimeout(ctx, ownerOpenTimeout)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "/proc/self/exe", OwnerOpenerArg, path, strconv.Itoa(flags))
	cmd.ExtraFiles = []*os.File{theirs} // descriptor 3
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}},
		Pdeathsig:  syscall.SIGKILL,
	}
	err = cmd.Run()
	theirs.Close()
	if err != nil {
		return -1, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return receiveFD(int(ours.Fd()))
}

// receiveFD reads the opener's one message: a descriptor, or the errno of its open.
func receiveFD(sock int) (int, error) {
	buf := make([]byte, 4)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("no answer from the opener: %w", err)
	}
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err == nil && len(msgs) == 1 {
			fds, err := unix.ParseUnixRights(&msgs[0])
			if err == nil && len(fds) == 1 {
				return fds[0], nil
			}
		}
		return -1, errors.New("the opener sent a malformed descriptor")
	}
	if n != 4 {
		return -1, errors.New("the opener sent a malformed answer")
	}
	return -1, syscall.Errno(binary.NativeEndian.Uint32(buf))
}

// RunOwnerOpener is the owner opener's whole life: args are the path and the open flags. It
// sends the descriptor, or the errno of the open, on descriptor 3 and returns the exit code.
func RunOwnerOpener(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: remocal-sidecar "+OwnerOpenerArg+" PATH FLAGS")
		return 2
	}
	flags, err := strconv.Atoi(args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad flags:", err)
		return 2
	}
	const sock = 3
	fd, err := unix.Open(args[0], flags|unix.O_CLOEXEC, 0)
	if err != nil {
		var errno syscall.Errno
		if !errors.As(err, &errno) {
			errno = unix.EIO
		}
		msg := binary.NativeEndian.AppendUint32(nil, uint32(errno))
		err = unix.Sendmsg(sock, msg, nil, nil, 0)
	} else {
		err = unix.Sendmsg(sock, []byte{1}, unix.UnixRights(fd), nil, 0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "send the answer:", err)
		return 1
	}
	return 0
}

// targetRootCache keeps the target's root directory when only the owner opener could open it,
// so that each file operation does not start a process. It is keyed by the process's start
// time as well as its PID, so a PID used again is not mistaken for the old process.
type targetRootCache struct {
	mu    sync.Mutex
	held  bool // fd is the root of the process pid that started at start
	pid   int
	start string
	fd    int
}

// open returns a descriptor of pid's root directory (O_PATH) that the caller closes.
func (c *targetRootCache) open(ctx context.Context, procRoot string, pid int) (int, error) {
	const flags = unix.O_PATH | unix.O_DIRECTORY
	path := filepath.Join(procRoot, strconv.Itoa(pid), "root")
	fd, err := openDirect(path, flags)
	if !refused(err) {
		return fd, err
	}
	start := processStart(procRoot, pid)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.held || c.pid != pid || c.start != start || start == "" {
		fd, err := openProcAsOwner(ctx, procRoot, pid, path, flags, err)
		if err != nil {
			return -1, err
		}
		if c.held {
			unix.Close(c.fd)
		}
		c.held, c.pid, c.start, c.fd = true, pid, start, fd
	}
	return unix.FcntlInt(uintptr(c.fd), unix.F_DUPFD_CLOEXEC, 0)
}

// processStart is the start time of pid (field 22 of its stat), or "" if unknown.
func processStart(procRoot string, pid int) string {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return ""
	}
	// The command name, field 2, is in parentheses and may hold spaces and parentheses: count
	// from the last one.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	if fields := strings.Fields(string(b[i+1:])); len(fields) > 19 {
		return fields[19]
	}
	return ""
}
