//go:build linux

package layer

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// errRestartSys is the kernel's ERESTARTSYS, which a syscall interrupted by a signal returns
// inside the kernel: on the way back to the program the kernel runs the handler, then restarts
// the call if the handler has SA_RESTART (or there is no handler: a stop signal) and turns it
// into EINTR otherwise. Answered to a trapped call, it gets exactly that treatment; the
// restarted call is trapped again. It must only be answered to a thread the kernel has marked
// for a signal: one that is not goes back to the program with "errno 512".
const errRestartSys = unix.Errno(512)

// threadSignals is what /proc/<tid>/status tells of one thread's signals: those sent to it
// (SigPnd) and to its process (ShdPnd), and those it blocks and ignores.
type threadSignals struct {
	pending, shared, blocked, ignored uint64
	tid, tgid, threads                int
}

// readThreadSignals reads the signal state of thread tid (a notification's pid). The caller
// checks afterwards that the notification still waits, which proves tid was still its thread.
func readThreadSignals(tid int) (threadSignals, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", tid))
	if err != nil {
		return threadSignals{}, err
	}
	return parseThreadSignals(string(b))
}

// parseThreadSignals reads the text of a /proc/<tid>/status file.
func parseThreadSignals(status string) (threadSignals, error) {
	var t threadSignals
	masks := map[string]*uint64{"SigPnd": &t.pending, "ShdPnd": &t.shared, "SigBlk": &t.blocked, "SigIgn": &t.ignored}
	counts := map[string]*int{"Pid": &t.tid, "Tgid": &t.tgid, "Threads": &t.threads}
	seen := 0
	lines := bufio.NewScanner(strings.NewReader(status))
	for lines.Scan() {
		name, value, ok := strings.Cut(lines.Text(), ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		if mask, ok := masks[name]; ok {
			v, err := strconv.ParseUint(value, 16, 64)
			if err != nil {
				return threadSignals{}, fmt.Errorf("status field %s: %w", name, err)
			}
			*mask = v
			seen++
		} else if count, ok := counts[name]; ok {
			v, err := strconv.Atoi(value)
			if err != nil {
				return threadSignals{}, fmt.Errorf("status field %s: %w", name, err)
			}
			*count = v
			seen++
		}
	}
	if seen != len(masks)+len(counts) {
		return threadSignals{}, fmt.Errorf("status without the signal fields")
	}
	return t, nil
}

// interruption is how a trapped call waiting for a socket should end for the signals pending
// for its thread, as the kernel ends an interruptible socket wait: 0 to go on waiting when none
// is; EINTR for a timed wait (the socket has SO_RCVTIMEO or SO_SNDTIMEO; sock_intr_errno);
// otherwise ERESTARTSYS, so that a handler with SA_RESTART sees its call restarted, where the
// thread is sure to be marked for the signal: it was sent to the thread, or to a process whose
// signals go to this thread first (its only thread, or the main one). A signal sent to the
// process of another thread may be taken by a sibling, leaving this one unmarked: it gets
// EINTR, which a program must expect from a blocking call anyway.
func (t threadSignals) interruption(timed bool) unix.Errno {
	deliverable := ^t.blocked &^ t.ignored
	own, shared := t.pending&deliverable != 0, t.shared&deliverable != 0
	switch {
	case !own && !shared:
		return 0
	case timed:
		return unix.EINTR
	case own || t.threads == 1 || t.tid == t.tgid:
		return errRestartSys
	default:
		return unix.EINTR
	}
}
