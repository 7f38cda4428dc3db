package attach

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/kubectl/pkg/cmd/util/podcmd"
	"k8s.io/kubectl/pkg/polymorphichelpers"
	"k8s.io/kubectl/pkg/scheme"

	"github.com/remocal/kubectl-remocal/plugin/internal/usererr"
)

// Target is the pod and container a session attaches to.
type Target struct {
	Pod       *corev1.Pod
	Container string
	// Via names the object the user gave when it was not the pod itself, e.g. "deployment/echo".
	Via string
}

// supportedKinds are the TYPE values of TYPE/NAME, as kubectl spells them.
var supportedKinds = []string{"pod", "deployment", "statefulset", "replicaset", "daemonset", "job"}

// resolveTarget turns TYPE/NAME into a running pod, the way kubectl exec does (for a workload it
// picks one running pod of it, waiting up to timeout for one to exist), and chooses the
// container as kubectl exec does (chooseContainer).
func resolveTarget(ctx context.Context, getter genericclioptions.RESTClientGetter, namespace, ref, container string, timeout time.Duration) (*Target, error) {
	kind, _, ok := strings.Cut(ref, "/")
	if !ok {
		return nil, fmt.Errorf("target %q is not TYPE/NAME; use one of %s, e.g. pod/web-7d9f or deployment/web", ref, strings.Join(supportedKinds, ", "))
	}
	if !isSupportedKind(kind) {
		return nil, fmt.Errorf("target kind %q is not supported; use one of %s", kind, strings.Join(supportedKinds, ", "))
	}
	obj, err := resource.NewBuilder(getter).
		WithScheme(scheme.Scheme, scheme.Scheme.PrioritizedVersionsAllGroups()...).
		NamespaceParam(namespace).DefaultNamespace().
		ResourceNames("pods", ref).
		Do().Object()
	if apierrors.IsNotFound(err) {
		return nil, usererr.Wrap(err, fmt.Sprintf("%s not found in namespace %s%s", ref, namespace, existing(ctx, getter, namespace, kind)))
	}
	if err != nil {
		return nil, fmt.Errorf("find %s in namespace %s: %w", ref, namespace, err)
	}
	// kubectl's own choice of "the" pod of a workload: running ones first, then the most
	// recently started.
	pod, err := polymorphichelpers.AttachablePodForObjectFn(getter, obj, timeout)
	if wait.Interrupted(err) {
		return nil, usererr.Wrap(err, fmt.Sprintf("%s has no pod in namespace %s (waited %s); check it with kubectl get %s -n %s", ref, namespace, timeout, ref, namespace))
	}
	if err != nil {
		return nil, fmt.Errorf("find a running pod of %s: %w", ref, err)
	}
	if pod.Status.Phase != corev1.PodRunning {
		return nil, fmt.Errorf("pod %s is %s, not Running; remocal attaches to running pods only", pod.Name, pod.Status.Phase)
	}
	name, err := chooseContainer(pod, container)
	if err != nil {
		return nil, err
	}
	t := &Target{Pod: pod, Container: name}
	if kind != "pod" && kind != "pods" && kind != "po" {
		t.Via = ref
	}
	return t, ctx.Err()
}

// chooseContainer picks the container as kubectl exec does: requested, else the
// kubectl.kubernetes.io/default-container annotation, else the first regular container. A name
// may be a native sidecar's (an init container with restartPolicy Always), as kubectl exec
// takes it; a plain init container or an ephemeral one is refused, since it is not the app.
func chooseContainer(pod *corev1.Pod, requested string) (string, error) {
	if requested == "" {
		requested = pod.Annotations[podcmd.DefaultContainerAnnotationName]
	}
	if requested == "" {
		if len(pod.Spec.Containers) == 0 {
			return "", fmt.Errorf("pod %s has no containers", pod.Name)
		}
		return pod.Spec.Containers[0].Name, nil
	}
	if _, ok := ContainerSpec(pod, requested); ok {
		return requested, nil
	}
	var names []string
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.InitContainers {
		if isNativeSidecar(&c) {
			names = append(names, c.Name)
		}
	}
	sort.Strings(names)
	why := "not found in"
	if c, path := podcmd.FindContainerByName(pod, requested); c != nil {
		why = "is an ephemeral container, not the app's, in"
		if strings.HasPrefix(path, "spec.initContainers") {
			why = "is an init container, which ends before the app starts, in"
		}
	}
	return "", fmt.Errorf("container %q %s pod %s; its containers are: %s", requested, why, pod.Name, strings.Join(names, ", "))
}

// Kinds are the TYPE values of TYPE/NAME a target may have, as kubectl spells them.
func Kinds() []string {
	return slices.Clone(supportedKinds)
}

func isSupportedKind(kind string) bool {
	kind = strings.ToLower(kind)
	for _, k := range supportedKinds {
		if kind == k || kind == k+"s" {
			return true
		}
	}
	switch kind {
	case "po", "deploy", "sts", "rs", "ds":
		return true
	}
	return false
}

// existing names up to ten objects of kind in namespace, for a "not found" message; empty when
// they cannot be listed.
func existing(ctx context.Context, getter genericclioptions.RESTClientGetter, namespace, kind string) string {
	list, err := resource.NewBuilder(getter).
		WithScheme(scheme.Scheme, scheme.Scheme.PrioritizedVersionsAllGroups()...).
		NamespaceParam(namespace).DefaultNamespace().
		ResourceTypes(kind).SelectAllParam(true).
		Flatten().Do().Infos()
	if err != nil || ctx.Err() != nil {
		return ""
	}
	if len(list) == 0 {
		return fmt.Sprintf("; there is no %s in it", kind)
	}
	var names []string
	for i, info := range list {
		if i == 10 {
			names = append(names, "...")
			break
		}
		names = append(names, info.Name)
	}
	return fmt.Sprintf("; it has: %s", strings.Join(names, ", "))
}

// RunAsUser is the user the target container runs as, when the pod spec says.
func (t *Target) RunAsUser() *int64 {
	if c, ok := ContainerSpec(t.Pod, t.Container); ok && c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
		return c.SecurityContext.RunAsUser
	}
	if t.Pod.Spec.SecurityContext != nil {
		return t.Pod.Spec.SecurityContext.RunAsUser
	}
	return nil
}
