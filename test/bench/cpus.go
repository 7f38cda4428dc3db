package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/types"
)

// placement says on which CPUs the processes of a measurement run. On a real cluster the
// developer's machine (the plugin and the local program) is not the node (the pod, its sidecar
// and the clients of the pod); on this one machine they share two cores, and a mirrored request
// then also waits for the local copy's work, which no real node would. A split placement gives
// each side CPUs of its own. The zero placement leaves every process where the scheduler puts it.
type placement struct {
	name        string
	node, local *unix.CPUSet // nil: any CPU
}

// splitPlacement gives the node the first half of the CPUs and the local side the rest. It
// reports false on a machine with one CPU.
func splitPlacement() (placement, bool) {
	n := runtime.NumCPU()
	if n < 2 {
		return placement{}, false
	}
	var node, local unix.CPUSet
	for i := range n {
		if i < n/2 {
			node.Set(i)
		} else {
			local.Set(i)
		}
	}
	return placement{name: "node and local side on separate CPUs", node: &node, local: &local}, true
}

// startOn starts cmd on the CPUs of set (any CPU if nil). A child inherits the affinity of the
// thread that forks it, so this goroutine takes its own thread, narrows it for the fork and then
// widens it again; a thread that cannot be widened is not handed back to the runtime.
func startOn(cmd *exec.Cmd, set *unix.CPUSet) error {
	if set == nil {
		return cmd.Start()
	}
	runtime.LockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	if err := unix.SchedSetaffinity(0, set); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	startErr := cmd.Start()
	if err := unix.SchedSetaffinity(0, &old); err == nil {
		runtime.UnlockOSThread()
	}
	return startErr
}

// pinPod moves every thread of the pod's processes, the sidecar's included, to the CPUs of set
// (all CPUs if nil). Threads and children they make later inherit it. The processes are found by
// the pod's UID in their cgroup path, as the kubelet names the pod's cgroup.
func pinPod(uid types.UID, set *unix.CPUSet) error {
	if set == nil {
		var all unix.CPUSet
		for i := range runtime.NumCPU() {
			all.Set(i)
		}
		set = &all
	}
	marks := []string{"pod" + string(uid), "pod" + strings.ReplaceAll(string(uid), "-", "_")}
	cgroups, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	found := 0
	for _, path := range cgroups {
		b, err := os.ReadFile(path)
		if err != nil || !(strings.Contains(string(b), marks[0]) || strings.Contains(string(b), marks[1])) {
			continue // gone, or not the pod's
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		if err := pinProcess(pid, set); err != nil {
			return err
		}
		found++
	}
	if found == 0 {
		return fmt.Errorf("no process of pod %s found under /proc", uid)
	}
	return nil
}

// pinProcess sets the CPUs of every thread of pid; threads that ended meanwhile are skipped.
func pinProcess(pid int, set *unix.CPUSet) error {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, set); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("set the CPUs of thread %d of process %d: %w", tid, pid, err)
		}
	}
	return nil
}
