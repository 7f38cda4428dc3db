package plugin

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// A sidecar the kubelet reports Started is running, even when the pod status never says so:
// after a node restart the API server refuses the kubelet's status updates of a pod whose old
// ephemeral containers it ran again.
func TestSidecarStartedByEventOnly(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "u1"}}
	started := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web.1", Namespace: "ns"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web", UID: "u1", FieldPath: "spec.ephemeralContainers{remocal-abcde}"},
		Reason:         "Started",
		Type:           corev1.EventTypeNormal,
	}
	client := fake.NewClientset(pod, started)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := waitSidecarRunning(ctx, client, pod, "remocal-abcde", 3*time.Second)
	if err != nil || got == nil {
		t.Fatalf("waitSidecarRunning = %v, %v; want the pod, running", got, err)
	}
	// Another container's Started event says nothing about ours.
	if _, err := waitSidecarRunning(ctx, client, pod, "remocal-other", 600*time.Millisecond); err == nil {
		t.Fatal("another container's event counted as ours")
	}
}
