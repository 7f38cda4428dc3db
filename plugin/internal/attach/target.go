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
// container: -c, else the kubectl.kubernetes.io/default-container annotation, else the first.
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

func chooseContainer(pod *corev1.Pod, requested string) (string, error) {
	names := make([]string, 0, len(pod.Spec.Containers))
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	if requested == "" {
		if def := pod.Annotations["kubectl.kubernetes.io/default-container"]; def != "" {
			requested = def
		} else {
			return names[0], nil
		}
	}
	for _, n := range names {
		if n == requested {
			return n, nil
		}
	}
	sort.Strings(names)
	return "", fmt.Errorf("container %q not found in pod %s; its containers are: %s", requested, pod.Name, strings.Join(names, ", "))
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
	for _, c := range t.Pod.Spec.Containers {
		if c.Name == t.Container && c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
			return c.SecurityContext.RunAsUser
		}
	}
	if t.Pod.Spec.SecurityContext != nil {
		return t.Pod.Spec.SecurityContext.RunAsUser
	}
	return nil
}
