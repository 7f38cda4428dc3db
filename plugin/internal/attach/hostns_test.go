package attach

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/remocal/kubectl-remocal/plugin/internal/usererr"
)

func TestRefuseHostNamespaces(t *testing.T) {
	tests := []struct {
		name     string
		spec     corev1.PodSpec
		wantErrs []string // all in the one error line; none: accepted
	}{
		{name: "own namespaces"},
		{name: "hostNetwork", spec: corev1.PodSpec{HostNetwork: true}, wantErrs: []string{"hostNetwork", "every pod on the node"}},
		{name: "hostPID", spec: corev1.PodSpec{HostPID: true}, wantErrs: []string{"hostPID", "PID 1"}},
		{name: "both", spec: corev1.PodSpec{HostNetwork: true, HostPID: true}, wantErrs: []string{"hostNetwork", "hostPID"}},
		// hostIPC shares no namespace the sidecar acts in.
		{name: "hostIPC", spec: corev1.PodSpec{HostIPC: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := RefuseHostNamespaces(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: tt.spec})
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !usererr.Is(err) {
				t.Fatalf("err = %v, want a user error", err)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") {
				t.Errorf("not one line: %q", msg)
			}
			for _, want := range tt.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q lacks %q", err, want)
				}
			}
		})
	}
}
