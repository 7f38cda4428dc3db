package e2e

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// A pod that shares the node's network or processes is refused before anything is added to it:
// a sidecar there would act on the node itself. exec, port-forward and clean fail with one line
// that says why, doctor reports the target as failed, and the pod has no ephemeral container
// afterwards.
func TestHostNamespacesRefused(t *testing.T) {
	env := newEnv(t)
	p := env.plugin(t)
	sleeper := corev1.Container{Name: "app", Image: testApp(), ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"/testapp", "sleep"}}
	for _, c := range []struct {
		name string
		spec corev1.PodSpec
		want string
	}{
		{"hostnet", corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{sleeper}}, "(hostNetwork:"},
		{"hostpid", corev1.PodSpec{HostPID: true, Containers: []corev1.Container{sleeper}}, "(hostPID:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env.createDeploymentSpec(t, c.name, c.spec)
			pod, err := env.waitReadyPod(env.ctx(t), "app="+c.name)
			if err != nil {
				t.Fatal(err)
			}
			target := "deployment/" + c.name
			for _, args := range [][]string{
				{"exec", target, "--", "true"},
				{"exec", target, "--steal", "--", "true"},
				{"port-forward", target, "-L", "0:localhost:80"},
				{"clean", target},
			} {
				assertOneLineError(t, p.run(t, args...), c.want)
			}
			rep, r := p.doctor(t, target)
			if r.code == 0 {
				t.Errorf("doctor exit 0 for a %s target", c.name)
			}
			if status, detail, _ := rep.row("target"); status != "fail" || !strings.Contains(detail, c.want) {
				t.Errorf("doctor's target row: %s %q, want fail with %q", status, detail, c.want)
			}
			if n := env.ephemeralContainers(t, pod.Name); n != 0 {
				t.Errorf("the pod has %d ephemeral containers: something was added before the refusal", n)
			}
		})
	}
}
