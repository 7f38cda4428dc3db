package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat: 100 on every Linux
// architecture this runs on.
const clockTicks = 100

// chainDaemons are the local cluster's processes that carry a port-forward's bytes: the API
// server proxies the stream to the kubelet, which hands it to containerd's streaming server.
func chainDaemons() []string { return []string{"kube-apiserver", "kubelet", "containerd"} }

// cpuProbe reads the CPU time of named processes; a name may cover several (the pod's
// sidecars, each a guard and a worker).
type cpuProbe map[string][]int

// newCPUProbe watches the cluster's daemons (found by name, so only on a local cluster), every
// process of the pod's remocal sidecars, and extra (a name per process).
func newCPUProbe(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, extra map[string]int) (cpuProbe, error) {
	p := cpuProbe{}
	daemons := chainDaemons()
	err := eachProcess(func(pid int) {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil {
			return // gone
		}
		name := strings.TrimSpace(string(comm))
		for _, d := range daemons {
			if name == d {
				p[d] = append(p[d], pid)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	for _, d := range daemons {
		if len(p[d]) == 0 {
			return nil, fmt.Errorf("no %s process on this machine (not a local cluster?)", d)
		}
	}
	ids, err := sidecarContainerIDs(ctx, client, pod)
	if err != nil {
		return nil, err
	}
	p["sidecar"] = processesInContainers(ids)
	for name, pid := range extra {
		p[name] = append(p[name], pid)
	}
	return p, nil
}

// read returns the CPU seconds each name's processes have used so far, their own threads'
// (children they waited for are not counted: the program under exec is the plugin's child).
// A process that has ended counts nothing, so read while they all run.
func (p cpuProbe) read() map[string]float64 {
	out := map[string]float64{}
	for name, pids := range p {
		for _, pid := range pids {
			out[name] += processCPU(pid)
		}
	}
	return out
}

// processCPU is utime+stime of pid in seconds, 0 if it has ended.
func processCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, field 2, is in parentheses and may hold spaces: count after it.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so fields 14 and 15 (utime, stime) are f[11] and f[12].
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return (utime + stime) / clockTicks
}

// sidecarContainerIDs lists the runtime IDs of the pod's running remocal sidecars, newest last.
func sidecarContainerIDs(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod) ([]string, error) {
	p, err := client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, s := range p.Status.EphemeralContainerStatuses {
		if strings.HasPrefix(s.Name, "remocal-") && s.State.Running != nil {
			if _, id, ok := strings.Cut(s.ContainerID, "://"); ok && id != "" {
				ids = append(ids, id)
			}
		}
	}
	return ids, nil
}

// processesInContainers finds the processes on this machine whose cgroup path names one of the
// container IDs.
func processesInContainers(ids []string) []int {
	var pids []int
	_ = eachProcess(func(pid int) {
		cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if err != nil {
			return
		}
		for _, id := range ids {
			if strings.Contains(string(cg), id) {
				pids = append(pids, pid)
				return
			}
		}
	})
	return pids
}

// eachProcess calls fn with the PID of every process under /proc.
func eachProcess(fn func(pid int)) error {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return err
	}
	if len(dirs) == 0 {
		return errors.New("no process under /proc")
	}
	for _, d := range dirs {
		if pid, err := strconv.Atoi(filepath.Base(d)); err == nil {
			fn(pid)
		}
	}
	return nil
}
