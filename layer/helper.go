//go:build linux

package layer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/remocal/kubectl-remocal/layer/internal/seccomp"
)

// socketEnv names the supervisor's unix socket for the helper. It is passed in the environment
// so that it reaches a helper started by `go run -exec`, and removed before the user's command.
// programEnvVar, beside it, numbers the program's own environment, which the supervisor hands
// over on that socket.
const (
	socketEnv     = "REMOCAL_LAYER_SOCKET"
	programEnvVar = "REMOCAL_LAYER_ENV"
)

// Exit codes of the helper when it cannot run the command, as a shell's.
const (
	exitCannotRun = 126
	exitNotFound  = 127
)

// HelperMain runs the command args under the filter and never returns on success (it execs).
// It returns the exit code to leave with otherwise, having said why on stderr.
func HelperMain(args []string) int {
	if len(args) == 1 && args[0] == "--probe" {
		return 0 // userNamespaces' child: being started was the test
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "remocal layer helper: no command")
		return exitCannotRun
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "remocal: %v\n", err)
		return exitNotFound
	}
	sockPath, envID := os.Getenv(socketEnv), os.Getenv(programEnvVar)
	if sockPath == "" || envID == "" {
		fmt.Fprintln(os.Stderr, "remocal layer helper: run by kubectl remocal exec only")
		return exitCannotRun
	}
	plan, err := planFromEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "remocal layer helper: %v\n", err)
		return exitCannotRun
	}
	var trapOpens bool
	var fuseDevs []int
	switch os.Getenv(nsEnv) {
	case "want":
		code, err := reexec(args, namespaceAttr(), []string{nsEnv + "=in"}, nil)
		if err == nil {
			return code
		}
		if plan.needsNamespaces() {
			fmt.Fprintf(os.Stderr, "remocal: cannot run %s under the layer: enter a user namespace: %v\n", args[0], err)
			return exitCannotRun
		}
		trapOpens = true // served files, from the supervisor
	case "in":
		if trapOpens, fuseDevs, err = enterMounts(plan, true); err != nil {
			fmt.Fprintf(os.Stderr, "remocal: cannot run %s under the layer: %v\n", args[0], err)
			return exitCannotRun
		}
		if plan.UID != 0 {
			code, err := dropToUser(args, plan, handover{TrapOpens: trapOpens, FUSE: fuseDevs})
			if err != nil {
				fmt.Fprintf(os.Stderr, "remocal: cannot run %s under the layer: be the user again in a nested user namespace: %v\n", args[0], err)
				return exitCannotRun
			}
			return code
		}
	case "user":
		var h handover
		if err := json.Unmarshal([]byte(os.Getenv(handoverEnv)), &h); err != nil {
			fmt.Fprintf(os.Stderr, "remocal layer helper: malformed handover: %v\n", err)
			return exitCannotRun
		}
		trapOpens, fuseDevs = h.TrapOpens, h.FUSE
	default:
		if trapOpens, fuseDevs, err = enterMounts(plan, false); err != nil {
			fmt.Fprintf(os.Stderr, "remocal: cannot run %s under the layer: %v\n", args[0], err)
			return exitCannotRun
		}
	}
	for _, name := range []string{socketEnv, programEnvVar, planEnv, nsEnv, handoverEnv} {
		_ = os.Unsetenv(name)
	}
	if err := superviseAndExec(sockPath, envID, path, args, trapOpens, fuseDevs); err != nil {
		fmt.Fprintf(os.Stderr, "remocal: cannot run %s under the layer: %v\n", args[0], err)
		return exitCannotRun
	}
	panic("unreachable: exec returned without error")
}

// handoverEnv carries a handover (JSON) from the helper that mounted to the one that drops to
// the user.
const handoverEnv = "REMOCAL_LAYER_HANDOVER"

// handover is what the helper that mounted passes on to the one that runs the program: whether
// to trap opens, and the FUSE devices for the supervisor (descriptors 3 and up).
type handover struct {
	TrapOpens bool  `json:"trapOpens,omitempty"`
	FUSE      []int `json:"fuse,omitempty"`
}

// dropToUser runs the rest in a nested user namespace as the user, handing over the FUSE
// devices, and returns its exit code.
func dropToUser(args []string, plan mountPlan, h handover) (int, error) {
	files := make([]*os.File, len(h.FUSE))
	for i, fd := range h.FUSE {
		files[i] = os.NewFile(uintptr(fd), "fuse")
		h.FUSE[i] = 3 + i
	}
	encoded, err := json.Marshal(h)
	if err != nil {
		return 0, err
	}
	return reexec(args, userAttr(plan.UID, plan.GID), []string{nsEnv + "=user", handoverEnv + "=" + string(encoded)}, files)
}

// planFromEnv reads the supervisor's mount plan; none is an empty one.
func planFromEnv() (mountPlan, error) {
	encoded := os.Getenv(planEnv)
	if encoded == "" {
		return mountPlan{}, nil
	}
	plan, err := decodePlan(encoded)
	if err != nil {
		return mountPlan{}, fmt.Errorf("malformed mount plan: %w", err)
	}
	return plan, nil
}

// enterMounts applies the mount plan when this process is in its own namespaces (inNS). Served
// files that cannot be mounted fall back to trapped opens (trapOpens); remote filesystems and
// hidden paths have no such fallback and fail. It returns the FUSE devices to hand over.
func enterMounts(plan mountPlan, inNS bool) (trapOpens bool, fuseDevs []int, err error) {
	switch {
	case plan.empty():
		return false, nil, nil
	case inNS:
		fuseDevs, err := applyPlan(plan)
		if err != nil && plan.needsNamespaces() {
			return false, nil, err
		}
		return err != nil, fuseDevs, nil
	case plan.needsNamespaces():
		return false, nil, errors.New("remote files and hidden paths need a user namespace")
	default:
		return true, nil, nil
	}
}

// superviseAndExec installs the filter on this thread, has the supervisor take its listener
// and the FUSE devices, and execs path on the same thread so that the program inherits the
// filter, with the program's environment (envID) from the supervisor laid over ours.
func superviseAndExec(sockPath, envID, path string, argv []string, trapOpens bool, fuseDevs []int) error {
	// Connect before the filter is installed: connect is trapped, and nobody would answer yet.
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("supervisor socket: %w", err)
	}
	if err := unix.Connect(sock, &unix.SockaddrUnix{Name: sockPath}); err != nil {
		return fmt.Errorf("reach the supervisor: %w", err)
	}
	filter, err := seccomp.Filter(traps(trapOpens))
	if err != nil {
		return err
	}
	// The filter goes on this thread only; the goroutine must not move until the exec.
	runtime.LockOSThread()
	// A parent-death signal belongs to a thread, and exec keeps only the exec'ing thread's:
	// the one the starter set is on the thread that was forked, which need not be this one
	// (the Go runtime moves goroutines between threads). Set it here too, so the program dies
	// with its parent whatever thread we run on.
	parent := os.Getppid()
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("set the parent-death signal: %w", err)
	}
	if os.Getppid() != parent {
		return errors.New("the supervisor is gone")
	}
	listener, err := seccomp.Install(filter)
	if err != nil {
		return fmt.Errorf("%w (a container's default seccomp profile forbids this: run remocal outside it or allow seccomp)", err)
	}
	// From here only untrapped syscalls: write, read, close, execve.
	handover := envID + " " + strconv.Itoa(listener)
	for _, dev := range fuseDevs {
		handover += " " + strconv.Itoa(dev)
	}
	if _, err := unix.Write(sock, []byte(handover+"\n")); err != nil {
		return fmt.Errorf("hand over the seccomp listener: %w", err)
	}
	reply, err := readToEnd(sock)
	if err != nil || len(reply) == 0 {
		return fmt.Errorf("the supervisor did not take the seccomp listener (%v)", err)
	}
	answer, programEnv, _ := strings.Cut(string(reply), "\n")
	if answer != "ok" {
		return fmt.Errorf("%s", answer)
	}
	// The program must not hold the listener: if the supervisor dies, the kernel has to see
	// no listener left so that trapped syscalls fail instead of waiting.
	_ = unix.Close(listener)
	for _, dev := range fuseDevs {
		_ = unix.Close(dev) // the supervisor has its own; ours would keep a dead mount alive
	}
	_ = unix.Close(sock)
	return unix.Exec(path, argv, overlayEnv(os.Environ(), strings.Split(strings.TrimSuffix(programEnv, "\x00"), "\x00")))
}

// readToEnd reads fd until its end of file.
func readToEnd(fd int) ([]byte, error) {
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return out, err
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
	}
}

// overlayEnv returns base with each KEY=VALUE of vars in place of base's KEY, or added.
func overlayEnv(base, vars []string) []string {
	index := map[string]int{}
	out := slices.Clone(base)
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		index[k] = i
	}
	for _, kv := range vars {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		if i, ok := index[k]; ok {
			out[i] = kv
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	return out
}
