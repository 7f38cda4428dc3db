package attach

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/kubectl/pkg/polymorphichelpers"
	"k8s.io/kubectl/pkg/scheme"
	"k8s.io/kubectl/pkg/util/podutils"
)

// The pod a session follows its workload to, when the one it is attached to goes away.

// nextPodPoll is how often NextPod looks again for a ready pod of the workload.
const nextPodPoll = 500 * time.Millisecond

// NextPod waits, up to wait, for the pod of the workload t.Via that kubectl exec would pick
// now, among those that are ready and not being deleted, other than t's own, and returns it as
// a target of the same container.
func (a *Attacher) NextPod(ctx context.Context, t *Target, wait time.Duration) (*Target, error) {
	if t.Via == "" {
		return nil, fmt.Errorf("pod %s was the target itself: there is no workload to follow", t.Pod.Name)
	}
	obj, err := resource.NewBuilder(a.Getter).
		WithScheme(scheme.Scheme, scheme.Scheme.PrioritizedVersionsAllGroups()...).
		NamespaceParam(t.Pod.Namespace).
		ResourceNames("pods", t.Via).
		Do().Object()
	if err != nil {
		return nil, fmt.Errorf("find %s again: %w", t.Via, err)
	}
	namespace, selector, err := polymorphichelpers.SelectorsForObject(obj)
	if err != nil {
		return nil, fmt.Errorf("the pods of %s: %w", t.Via, err)
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(nextPodPoll)
	defer tick.Stop()
	for {
		list, err := a.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
		if err == nil {
			if pod := followable(list.Items, t.Pod.UID); pod != nil {
				name, err := chooseContainer(pod, t.Container)
				if err != nil {
					return nil, err
				}
				return &Target{Pod: pod, Container: name, Via: t.Via}, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no ready pod of %s within %s", t.Via, wait)
		case <-tick.C:
		}
	}
}

// followable picks, as kubectl exec does (the most active pod first), a pod other than the one
// whose UID is gone that is running, ready and not being deleted.
func followable(pods []corev1.Pod, gone types.UID) *corev1.Pod {
	var candidates []*corev1.Pod
	for i := range pods {
		pod := &pods[i]
		if pod.UID == gone || pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning || !podutils.IsPodReady(pod) {
			continue
		}
		candidates = append(candidates, pod)
	}
	if len(candidates) == 0 {
		return nil
	}
	sort.Sort(sort.Reverse(podutils.ActivePods(candidates)))
	return candidates[0]
}
