package plugin

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// A sidecar the kubelet reports Started whose status never follows is a stuck pod (after a node
// restart the API server refuses the kubelet's status updates of a pod whose old ephemeral
// containers it ran again): one clear error in seconds, not the whole start timeout.
func TestSidecarStartedButStatusStuck(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "u1"}}
	started := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web.1", Namespace: "ns"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web", UID: "u1", FieldPath: "spec.ephemeralContainers{remocal-abcde}"},
		Reason:         "Started",
		Type:           corev1.EventTypeNormal,
	}
	client := fake.NewClientset(pod, started)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	begin := time.Now()
	_, err := waitSidecarRunning(ctx, client, pod, "remocal-abcde", 20*time.Second)
	if err == nil || !isUserError(err) || !strings.Contains(err.Error(), "status is stuck") {
		t.Fatalf("waitSidecarRunning = %v; want the stuck-status error", err)
	}
	if took := time.Since(begin); took > statusLagLimit+2*time.Second {
		t.Fatalf("took %s", took)
	}
	// Once the status says running, the same event is just the usual lag.
	pod.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{{Name: "remocal-abcde", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	if _, err := client.CoreV1().Pods("ns").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := waitSidecarRunning(ctx, client, pod, "remocal-abcde", 3*time.Second); err != nil || got == nil {
		t.Fatalf("waitSidecarRunning = %v, %v; want running", got, err)
	}
}
