package attach

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/remocal/kubectl-remocal/plugin/internal/usererr"
)

// RefuseHostNamespaces refuses a pod that shares the node's network or processes, before
// anything is added to it. The sidecar acts in the target's namespaces, which there are the
// node's: with hostNetwork a steal's redirect takes that port from every pod on the node and
// stays on the node after the pod; with hostPID the target's process, found by PID in the shared
// namespace, may be any process of the node, PID 1 (the host's init) first, and its environment
// and root filesystem are the host's.
func RefuseHostNamespaces(pod *corev1.Pod) error {
	var shared []string
	if pod.Spec.HostNetwork {
		shared = append(shared, "the node's network (hostNetwork: a redirect would take the port from every pod on the node and outlive this one)")
	}
	if pod.Spec.HostPID {
		shared = append(shared, "the node's processes (hostPID: the target would be the host's PID 1, its files the host's)")
	}
	if len(shared) == 0 {
		return nil
	}
	return usererr.New(fmt.Sprintf("pod %s shares %s; remocal refuses such pods, target one with its own namespaces", pod.Name, strings.Join(shared, " and ")))
}
