package attach

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/remocal/kubectl-remocal/plugin/internal/usererr"
)

// RefuseWindows refuses a pod that runs on Windows, before anything is added to it: the sidecar
// is a Linux binary that acts through Linux namespaces, /proc and nftables, and an ephemeral
// container cannot choose another node. The pod spec says so when it sets os.name (required
// of Windows pods under Pod Security restricted); otherwise the node's kubernetes.io/os label
// does, for a user who may read nodes. A node that cannot be read decides nothing: most users
// may not read nodes, and most nodes are Linux.
func RefuseWindows(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod) error {
	const msg = "pod %s runs on Windows (%s); remocal's sidecar runs on Linux nodes only"
	if pod.Spec.OS != nil && pod.Spec.OS.Name == corev1.Windows {
		return usererr.New(fmt.Sprintf(msg, pod.Name, "its spec.os.name"))
	}
	if pod.Spec.NodeName == "" {
		return nil
	}
	node, err := client.CoreV1().Nodes().Get(ctx, pod.Spec.NodeName, metav1.GetOptions{})
	if err != nil {
		klog.V(1).InfoS("cannot read the pod's node to check its OS", "node", pod.Spec.NodeName, "err", err)
		return nil
	}
	if node.Labels[corev1.LabelOSStable] == string(corev1.Windows) {
		return usererr.New(fmt.Sprintf(msg, pod.Name, "node "+node.Name+" is labelled "+corev1.LabelOSStable+"=windows"))
	}
	return nil
}
