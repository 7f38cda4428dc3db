package attach

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The pod to follow to is ready, running, not being deleted, and not the one gone.
func TestFollowable(t *testing.T) {
	ready := []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	now := metav1.Now()
	pod := func(name string, uid string, phase corev1.PodPhase, conds []corev1.PodCondition, deleting bool) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(uid)}, Status: corev1.PodStatus{Phase: phase, Conditions: conds}}
		if deleting {
			p.DeletionTimestamp = &now
		}
		return p
	}
	pods := []corev1.Pod{
		pod("old", "u-old", corev1.PodRunning, ready, false),
		pod("leaving", "u-leaving", corev1.PodRunning, ready, true),
		pod("starting", "u-starting", corev1.PodRunning, nil, false),
		pod("pending", "u-pending", corev1.PodPending, nil, false),
		pod("next", "u-next", corev1.PodRunning, ready, false),
	}
	if got := followable(pods, "u-old"); got == nil || got.Name != "next" {
		t.Fatalf("followable = %v, want pod next", got)
	}
	if got := followable(pods[:4], "u-old"); got != nil {
		t.Fatalf("followable = %s, want none", got.Name)
	}
}
