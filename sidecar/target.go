package sidecar

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// targetProcess finds the target container's main process, by the runtime's container ID once
// a client has named it (wire.Target). One per sidecar, not per client: every client of a
// sidecar targets the same container (the plugin reuses a sidecar only for that), and the
// newest ID a client read from the pod status is the container's running instance. The zero
// value knows no ID.
type targetProcess struct {
	mu          sync.Mutex
	containerID string
	// found is the container's main process when last looked for: every file request asks,
	// and one cgroup read that still shows it there spares a scan of every process's.
	found int
}

// name makes id the target container's ID and returns its main process. An ID that is not a
// runtime's, or that no process has, is refused and leaves the ID known before.
func (t *targetProcess) name(procRoot, id string) (int, error) {
	if !isContainerID(id) {
		return 0, fmt.Errorf("%q is not a container ID (hex digits, as in the pod status after \"containerd://\")", id)
	}
	pid, err := containerPID(procRoot, id)
	if err != nil {
		return 0, err
	}
	t.mu.Lock()
	t.containerID, t.found = id, pid
	t.mu.Unlock()
	return pid, nil
}

// pid returns the target's main process: that of the named container, else targetPID's guess.
func (t *targetProcess) pid(procRoot string) (int, error) {
	t.mu.Lock()
	id, found := t.containerID, t.found
	t.mu.Unlock()
	if id == "" {
		return targetPID(procRoot)
	}
	// The main process stays the container's lowest while it lives: the container's others are
	// its descendants, started after it.
	if found != 0 && inContainer(procRoot, found, id) {
		return found, nil
	}
	pid, err := containerPID(procRoot, id)
	if err == nil && inContainer(procRoot, pid, id) {
		t.mu.Lock()
		if t.containerID == id {
			t.found = pid
		}
		t.mu.Unlock()
	}
	return pid, err
}

// isContainerID accepts what runtimes use: at least 32 hex digits (64 in practice), so that the
// ID cannot match another part of a cgroup path ("kubepods", a pod UID's pieces).
func isContainerID(id string) bool {
	if len(id) < 32 {
		return false
	}
	for _, c := range id {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// containerPID returns the lowest PID whose cgroup names the container id: its first process.
// Every runtime puts a container's processes in a cgroup named after its ID, under the systemd
// driver (cri-containerd-ID.scope, crio-ID.scope, docker-ID.scope) and cgroupfs alike
// (.../podUID/ID), in cgroup v1 and v2, and a cgroup namespace shows the path relative to ours,
// ID included. When no process matches in a PID namespace of the target's own (PID 1 is not the
// pod's pause), that namespace holds only the target, as without an ID; in a shared one it
// would be a guess among the pod's containers, so it is an error.
func containerPID(procRoot, id string) (int, error) {
	best, err := lowestPID(procRoot, func(pid int) bool { return inContainer(procRoot, pid, id) })
	if err != nil {
		return 0, err
	}
	switch {
	case best != 0:
		return best, nil
	case !isPause(procRoot, 1):
		return targetPID(procRoot)
	}
	return 0, fmt.Errorf("no process of container %s in the pod's shared PID namespace: %w", shortID(id), errNoContainer)
}

var errNoContainer = errors.New("the container is not running (it may have restarted)")

// inContainer reports whether pid's cgroup names the container id.
func inContainer(procRoot string, pid int, id string) bool {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "cgroup"))
	return err == nil && bytes.Contains(b, []byte(id))
}

func shortID(id string) string { return id[:min(len(id), 12)] }

// targetPID guesses the target container's main process without its ID. With
// targetContainerName the sidecar shares the target's PID namespace, where that process is PID 1,
// unless the pod shares one PID namespace among all its containers (shareProcessNamespace), where
// PID 1 is the pod's pause process: then the guess is the oldest process that is neither pause
// nor one of ours, which may be another container's.
func targetPID(procRoot string) (int, error) {
	self := os.Getpid()
	best, err := lowestPID(procRoot, func(pid int) bool {
		return pid != self && !isOwnProcess(procRoot, pid, self) && !isPause(procRoot, pid)
	})
	if err != nil {
		return 0, err
	}
	if best == 0 {
		return 0, fmt.Errorf("no target process visible in %s: is the sidecar in the target container's PID namespace?", procRoot)
	}
	return best, nil
}

// lowestPID is the lowest PID in procRoot that match accepts, or 0 for none. match is asked
// only of PIDs below the best so far, which spares reading the files of most processes.
func lowestPID(procRoot string, match func(pid int) bool) (int, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return 0, fmt.Errorf("list processes: %w", err)
	}
	best := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || (best != 0 && pid > best) {
			continue
		}
		if match(pid) {
			best = pid
		}
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
func readEnviron(ctx context.Context, procRoot string, pid int) ([]string, error) {
	fd, err := openProc(ctx, procRoot, pid, "environ", unix.O_RDONLY)
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
