package follow

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// Only the names of the variables that differ are told, added and removed ones included.
func TestChangedNames(t *testing.T) {
	got := changedNames([]string{"A=1", "B=2", "C=3", "SECRET=x"}, []string{"A=1", "B=20", "D=4", "SECRET=y"})
	if want := []string{"B", "C", "D", "SECRET"}; !slices.Equal(got, want) {
		t.Fatalf("changedNames = %v, want %v", got, want)
	}
}

// The watch tells a pod being deleted and a pod deleted outright.
func TestPodGone(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "ns", UID: "u1"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	for name, tc := range map[string]struct {
		change func(ctx context.Context, c *fake.Clientset) error
		want   string
	}{
		"deleted": {func(ctx context.Context, c *fake.Clientset) error {
			return c.CoreV1().Pods("ns").Delete(ctx, "web-1", metav1.DeleteOptions{})
		}, "was deleted"},
		"being deleted": {func(ctx context.Context, c *fake.Clientset) error {
			p := pod.DeepCopy()
			now := metav1.Now()
			p.DeletionTimestamp = &now
			_, err := c.CoreV1().Pods("ns").Update(ctx, p, metav1.UpdateOptions{})
			return err
		}, "is being deleted"},
		"ended": {func(ctx context.Context, c *fake.Clientset) error {
			p := pod.DeepCopy()
			p.Status.Phase = corev1.PodFailed
			_, err := c.CoreV1().Pods("ns").Update(ctx, p, metav1.UpdateOptions{})
			return err
		}, "ended (Failed)"},
	} {
		t.Run(name, func(t *testing.T) {
			client := fake.NewClientset(pod.DeepCopy())
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			go func() {
				time.Sleep(200 * time.Millisecond)
				if err := tc.change(ctx, client); err != nil {
					t.Error(err)
				}
			}()
			got, err := podGone(ctx, client, pod)
			if err != nil || got != tc.want {
				t.Fatalf("podGone = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
