package attach

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/remocal/kubectl-remocal/plugin/internal/usererr"
)

func TestRefuseWindows(t *testing.T) {
	node := func(name, os string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelOSStable: os}}}
	}
	tests := []struct {
		name    string
		nodes   []runtime.Object
		nodeOf  string // the pod's spec.nodeName
		os      corev1.OSName
		wantErr string // "": accepted
	}{
		{name: "linux node", nodes: []runtime.Object{node("n1", "linux")}, nodeOf: "n1"},
		{name: "windows node", nodes: []runtime.Object{node("w1", "windows")}, nodeOf: "w1", wantErr: "pod web runs on Windows (node w1 is labelled kubernetes.io/os=windows); remocal's sidecar runs on Linux nodes only"},
		{name: "windows pod spec, node unread", nodeOf: "w1", os: corev1.Windows, wantErr: "pod web runs on Windows (its spec.os.name)"},
		{name: "linux pod spec", nodes: []runtime.Object{node("n1", "linux")}, nodeOf: "n1", os: corev1.Linux},
		// Most users may not read nodes: that decides nothing.
		{name: "node unread", nodeOf: "n1"},
		{name: "not scheduled", nodes: []runtime.Object{node("w1", "windows")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod("web", corev1.PodRunning, nil)
			pod.Spec.NodeName = tt.nodeOf
			if tt.os != "" {
				pod.Spec.OS = &corev1.PodOS{Name: tt.os}
			}
			err := RefuseWindows(t.Context(), fake.NewClientset(tt.nodes...), pod)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !usererr.Is(err) || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one user line with %q", err, tt.wantErr)
			}
		})
	}
}
