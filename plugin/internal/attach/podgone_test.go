package attach

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// A pod deleted, being deleted, replaced under its name or ended is gone; one that cannot be
// read is not taken for gone.
func TestGoneReason(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", UID: "u1"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	now := metav1.Now()
	deleting := pod.DeepCopy()
	deleting.DeletionTimestamp = &now
	replaced := pod.DeepCopy()
	replaced.UID = "u2"
	failed := pod.DeepCopy()
	failed.Status.Phase = corev1.PodFailed
	notFound := apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "web-1")
	for _, tt := range []struct {
		p    *corev1.Pod
		err  error
		want string
	}{
		{pod, nil, ""},
		{nil, notFound, "was deleted"},
		{nil, errors.New("connection refused"), ""},
		{deleting, nil, "is being deleted"},
		{replaced, nil, "was replaced by a pod of the same name"},
		{failed, nil, "ended (Failed)"},
	} {
		if got := goneReason(tt.p, tt.err, pod); got != tt.want {
			t.Errorf("goneReason(%v, %v) = %q, want %q", tt.p != nil, tt.err, got, tt.want)
		}
	}
}
