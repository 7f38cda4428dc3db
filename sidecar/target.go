package sidecar

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// targetPID finds the target container's main process. With targetContainerName the sidecar
// shares the target's PID namespace, where that process is PID 1, unless the pod shares one PID
// namespace among all its containers (shareProcessNamespace), where PID 1 is the pod's pause
// process: then the target is the oldest process that is neither pause nor one of ours.
func targetPID(procRoot string) (int, error) {
	self := os.Getpid()
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return 0, fmt.Errorf("list processes: %w", err)
	}
	best := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if best != 0 && pid > best {
			continue
		}
		if isOwnProcess(procRoot, pid, self) || isPause(procRoot, pid) {
			continue
		}
		best = pid
	}
	if best == 0 {
		return 0, fmt.Errorf("no target process visible in %s: is the sidecar in the target container's PID namespace?", procRoot)
	}
	return best, nil
}

// isOwnProcess reports whether pid is the sidecar or one of its children (sharing its root).
func isOwnProcess(procRoot string, pid, self int) bool {
	own, err1 := os.Readlink(filepath.Join(procRoot, strconv.Itoa(self), "exe"))
	other, err2 := os.Readlink(filepath.Join(procRoot, strconv.Itoa(pid), "exe"))
	return err1 == nil && err2 == nil && own == other
}

func isPause(procRoot string, pid int) bool {
	comm, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "comm"))
	return err == nil && strings.TrimSpace(string(comm)) == "pause"
}

// readEnviron returns the process's environment as it was at exec: the container runtime's
// variables, including those that came from Secrets, ConfigMaps, envFrom and service links.
func readEnviron(procRoot string, pid int) ([]string, error) {
	fd, err := openProc(procRoot, pid, "environ", unix.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("read the environment of pid %d: %w", pid, err)
	}
	f := os.NewFile(uintptr(fd), "environ")
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read the environment of pid %d: %w", pid, err)
	}
	var env []string
	for _, kv := range bytes.Split(b, []byte{0}) {
		if len(kv) > 0 {
			env = append(env, string(kv))
		}
	}
	return env, nil
}
