//go:build linux

package layer

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// pidfdThread is PIDFD_THREAD (Linux 6.9): a pidfd for any thread, not only a leader. A
// notification names the calling thread, and Go programs connect from any of theirs.
const pidfdThread = unix.O_EXCL

// takeFD duplicates descriptor fd of the process that thread tid belongs to.
func takeFD(tid, fd int) (int, error) {
	pidfd, err := openPidfd(tid)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pidfd)
	dup, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return -1, err
	}
	return dup, nil
}

func openPidfd(tid int) (int, error) {
	pidfd, err := unix.PidfdOpen(tid, pidfdThread)
	if err == nil {
		return pidfd, nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return -1, fmt.Errorf("pidfd_open %d: %w", tid, err)
	}
	// An older kernel: PIDFD_THREAD unknown, or tid not a leader. Open the thread group.
	tgid, terr := threadGroup(tid)
	if terr != nil {
		return -1, terr
	}
	pidfd, err = unix.PidfdOpen(tgid, 0)
	if err != nil {
		return -1, fmt.Errorf("pidfd_open %d: %w", tgid, err)
	}
	return pidfd, nil
}

// threadGroup reads the thread group id (the process id) of thread tid.
func threadGroup(tid int) (int, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Tgid:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("no Tgid in /proc/%d/status", tid)
}
