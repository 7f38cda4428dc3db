package attach

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/remocal/kubectl-remocal/pkg/sidecarapi"
	"github.com/remocal/kubectl-remocal/plugin/internal/usererr"
)

// addSidecar adds ec to the pod through the ephemeralcontainers subresource, as kubectl debug
// does, and turns the API server's refusals into lines a user can act on.
func addSidecar(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, ec corev1.EphemeralContainer) error {
	patch, err := json.Marshal(map[string]any{
		"spec": map[string]any{"ephemeralContainers": []corev1.EphemeralContainer{ec}},
	})
	if err != nil {
		return err
	}
	_, err = client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "ephemeralcontainers")
	switch {
	case err == nil:
		return nil
	case subresourceMissing(err):
		return usererr.Wrap(err, "ephemeral containers are disabled for this cluster (the pods/ephemeralcontainers subresource does not exist); remocal needs Kubernetes 1.25 or later")
	case apierrors.IsForbidden(err):
		if reason, ok := podSecurityRefusal(err); ok {
			return usererr.Wrap(err, fmt.Sprintf("Pod Security admission refused the sidecar in namespace %s: %s", pod.Namespace, reason))
		}
		return usererr.Wrap(err, fmt.Sprintf("not allowed to add an ephemeral container to pod %s: %s; ask for patch on pods/ephemeralcontainers", pod.Name, apierrors.ReasonForError(err)))
	default:
		return fmt.Errorf("add sidecar to pod %s: %w", pod.Name, err)
	}
}

// subresourceMissing tells a 404 on the ephemeralcontainers subresource itself from one on the
// pod, as kubectl debug does: the API server answers a path it does not serve with a Status that
// names no object, and a pod that is gone with one that names it. A 404 that is not the API
// server's Status at all (client-go then makes one up, naming the pod of the request) is taken
// as the path's too: the pod was just read, and the API server answers a missing one with a
// Status.
func subresourceMissing(err error) bool {
	status, ok := errors.AsType[*apierrors.StatusError](err)
	if !ok || status.Status().Reason != metav1.StatusReasonNotFound {
		return false
	}
	details := status.Status().Details
	if details == nil || details.Name == "" {
		return true
	}
	return slices.ContainsFunc(details.Causes, func(c metav1.StatusCause) bool {
		return c.Type == metav1.CauseTypeUnexpectedServerResponse
	})
}

// podSecurityRefusal is the reason Pod Security admission gave for refusing the patch, when it
// is what refused it. Its 403 has the shape of any other (an RBAC refusal's): no cause or field
// tells them apart, only the message the admission plugin writes, "pods "web" is forbidden:
// violates PodSecurity "restricted:latest": ...".
func podSecurityRefusal(err error) (string, bool) {
	status, ok := errors.AsType[*apierrors.StatusError](err)
	if !ok {
		return "", false
	}
	const mark = "violates PodSecurity"
	msg := status.Status().Message
	if i := strings.Index(msg, mark); i >= 0 {
		return msg[i:], true
	}
	return "", false
}

// fatalWaitingReasons are container states that will not resolve by waiting: fail at once with
// the reason instead of running into the start timeout.
var fatalWaitingReasons = map[string]bool{
	"ErrImagePull":               true,
	"ImagePullBackOff":           true,
	"ErrImageNeverPull":          true,
	"InvalidImageName":           true,
	"CreateContainerError":       true,
	"CreateContainerConfigError": true,
	"RunContainerError":          true,
}

// statusLagLimit is how long the pod status may lag the sidecar's start (the kubelet's Started
// event, or its first log line) before we take it as stuck.
const statusLagLimit = 8 * time.Second

// logCheckEvery spaces the looks at the sidecar's log while its status does not say running.
const logCheckEvery = time.Second

// waitSidecarRunning polls until the named ephemeral container runs, and fails fast with the
// kubelet's reason when it cannot start. Besides the pod status it reads the pod's events: the
// kubelet reports a failed image pull as an event at once, while the container status catches up
// only at its next status sync, ten seconds or more later.
//
// A status that never names the started sidecar is a stuck pod: after a node restart the
// kubelet runs a pod's old ephemeral containers again, and the API server refuses every status
// update that moves them back to running, ours with them ("may not be transitioned to
// non-terminated state"). A status that names it, even as waiting, shows that the kubelet's
// updates land, and is only slow. The start shows in the kubelet's Started event, which its
// spam filter drops once the pod has had 25 events from it (a pod with a few sessions behind
// it), and in the sidecar's log, which the kubelet serves from what it runs, whatever the
// status says.
func waitSidecarRunning(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, name string, timeout time.Duration) (*corev1.Pod, error) {
	var running *corev1.Pod
	var startedSeen time.Time // when the sidecar was first seen started: its event or its log
	begin, logChecked := time.Now(), time.Time{}
	stuck := func() error {
		return usererr.New(fmt.Sprintf("the sidecar started, but pod %s's status is stuck: the API server refuses the kubelet's updates of it (after a node restart the kubelet ran its old ephemeral containers again); delete the pod so that its controller makes a new one, or target another pod", pod.Name))
	}
	fieldPath := fmt.Sprintf("spec.ephemeralContainers{%s}", name)
	events := fields.Set{"involvedObject.name": pod.Name, "involvedObject.uid": string(pod.UID)}.AsSelector().String()
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, fmt.Errorf("pod %s was deleted while its sidecar was starting", pod.Name)
		}
		if err != nil {
			return false, nil // a passing API error: try again until the timeout
		}
		if done, err := sidecarState(p, name); done || err != nil {
			running = p
			return done, err
		}
		reported := slices.ContainsFunc(p.Status.EphemeralContainerStatuses, func(s corev1.ContainerStatus) bool { return s.Name == name })
		if !reported && startedSeen.IsZero() && time.Since(begin) > logCheckEvery && time.Since(logChecked) > logCheckEvery {
			logChecked = time.Now()
			if sidecarLogged(ctx, client, pod, name) {
				startedSeen = time.Now()
			}
		}
		if !reported && !startedSeen.IsZero() && time.Since(startedSeen) > statusLagLimit {
			return false, stuck()
		}
		// Events are best effort: a user who may not list them still gets the status path.
		list, err := client.CoreV1().Events(pod.Namespace).List(ctx, metav1.ListOptions{FieldSelector: events})
		if err != nil {
			return false, nil
		}
		var failed []string // the kubelet's messages: the pull's error, then "Error: ErrImagePull"
		for _, ev := range list.Items {
			if ev.InvolvedObject.FieldPath != fieldPath {
				continue
			}
			switch {
			case ev.Type == corev1.EventTypeWarning && ev.Reason == "Failed":
				failed = append(failed, ev.Message)
			case ev.Reason == "Started":
				// The kubelet says it started; the status follows within a second or two,
				// unless it is stuck.
				if startedSeen.IsZero() {
					startedSeen = time.Now()
				}
				if !reported && time.Since(startedSeen) > statusLagLimit {
					return false, stuck()
				}
			}
		}
		if len(failed) > 0 {
			return false, startFailure(p, name, failed)
		}
		return false, nil
	})
	return running, waitError(ctx, name, timeout, err)
}

// startFailure words the kubelet's Failed events of the sidecar: a registry's refusal for lack
// of credentials in any of them, else the pull's own error rather than the kubelet's summary of
// it ("Error: ErrImagePull"), whichever is listed first.
func startFailure(p *corev1.Pod, name string, messages []string) error {
	for _, m := range messages {
		if line, ok := credentialsLine(p, sidecarImage(p, name), m); ok {
			return usererr.Wrap(errors.New(m), line)
		}
	}
	message := messages[0]
	if i := slices.IndexFunc(messages, func(m string) bool { return !strings.HasPrefix(m, "Error: ") }); i >= 0 {
		message = messages[i]
	}
	return usererr.New(fmt.Sprintf("the sidecar cannot start: %s; check that the image exists and the node can pull it, or pass --sidecar-image", message))
}

// sidecarImage is the image of the pod's ephemeral container name.
func sidecarImage(p *corev1.Pod, name string) string {
	for _, ec := range p.Spec.EphemeralContainers {
		if ec.Name == name {
			return ec.Image
		}
	}
	return "the sidecar's image"
}

// sidecarState reports whether the sidecar runs, or why it never will.
func sidecarState(p *corev1.Pod, name string) (bool, error) {
	for _, s := range p.Status.EphemeralContainerStatuses {
		if s.Name != name {
			continue
		}
		switch {
		case s.State.Running != nil:
			return true, nil
		case s.State.Terminated != nil:
			t := s.State.Terminated
			return false, usererr.New(fmt.Sprintf("the sidecar exited at start (%s, exit code %d): %s", t.Reason, t.ExitCode, strings.TrimSpace(t.Message)))
		case s.State.Waiting != nil && fatalWaitingReasons[s.State.Waiting.Reason]:
			w := s.State.Waiting
			hint := ""
			if strings.Contains(w.Reason, "Image") {
				if line, ok := credentialsLine(p, s.Image, w.Message); ok {
					return false, usererr.Wrap(errors.New(w.Message), line)
				}
				hint = fmt.Sprintf("; check that %s exists and the node can pull it, or pass --sidecar-image", s.Image)
			}
			return false, usererr.New(fmt.Sprintf("the sidecar cannot start: %s: %s%s", w.Reason, w.Message, hint))
		}
	}
	return false, nil
}

func waitError(ctx context.Context, name string, timeout time.Duration, err error) error {
	if err == nil || usererr.Is(err) {
		return err
	}
	if ctx.Err() == nil && wait.Interrupted(err) {
		return usererr.Wrap(err, fmt.Sprintf("the sidecar %s was not running after %s (raise --start-timeout, or check the pod's events: kubectl describe pod)", name, timeout))
	}
	return fmt.Errorf("wait for sidecar %s: %w", name, err)
}

// readSidecarFingerprint reads the sidecar's first log line through the pod log API. The log is
// the channel the cluster already authenticates: whoever may read it may use the pod anyway.
func readSidecarFingerprint(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, name string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	start, err := readStartLine(ctx, client, pod, name, true)
	if err != nil {
		return "", err
	}
	return start.Fingerprint, nil
}

// sidecarLogged tells whether the sidecar's log has its start line already, looking once.
func sidecarLogged(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, name string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := readStartLine(ctx, client, pod, name, false)
	return err == nil
}

// readStartLine reads the sidecar's first log line, waiting for it if follow, and parses it.
func readStartLine(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, name string, follow bool) (sidecarapi.StartLine, error) {
	limit := int64(4096)
	stream, err := client.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: name, Follow: follow, LimitBytes: &limit}).Stream(ctx)
	if err != nil {
		return sidecarapi.StartLine{}, fmt.Errorf("read the sidecar's log: %w", err)
	}
	defer stream.Close()
	line, err := bufio.NewReader(stream).ReadBytes('\n')
	if err != nil {
		return sidecarapi.StartLine{}, fmt.Errorf("read the sidecar's first log line: %w", err)
	}
	start, err := sidecarapi.ParseStartLine(line)
	if err != nil {
		return sidecarapi.StartLine{}, fmt.Errorf("the sidecar's first log line carries no key fingerprint: %q", bytes.TrimSpace(line))
	}
	return start, nil
}
