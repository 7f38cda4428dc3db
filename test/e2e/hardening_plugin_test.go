package e2e

import (
	"cmp"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// A repository's .remocal.yaml that sets env-file to ~/.bashrc is refused in one line before
// the cluster is reached, and the file is untouched; once the user trusts the file, it is taken.
// HOME is a temporary directory: no real ~/.bashrc is at risk.
func TestUntrustedConfigFileRefused(t *testing.T) {
	env := newEnv(t)
	echo := env.deployEcho(t)
	p := env.plugin(t)
	p.dir = t.TempDir() // the cloned repository
	p.bare = true
	home := t.TempDir()
	bashrc := filepath.Join(home, ".bashrc")
	const original = "# the user's own\n"
	if err := os.WriteFile(bashrc, []byte(original), 0o644); err != nil {
		t.Fatal(err)
	}
	file := "target: deployment/echo\nnamespace: " + env.namespace + "\nenv-file: " + bashrc + "\n"
	if err := os.WriteFile(filepath.Join(p.dir, ".remocal.yaml"), []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	homeEnv := []string{"HOME=" + home}

	r := p.runWith(t, homeEnv, "exec")
	assertOneLineError(t, r, ".remocal.yaml:3: env-file (chooses a file of this machine to write): taken only from a file you trust")
	if !strings.Contains(r.stderr, "kubectl remocal config trust .remocal.yaml") {
		t.Errorf("the error does not say how to trust the file:\n%s", r.stderr)
	}
	if b, err := os.ReadFile(bashrc); err != nil || string(b) != original {
		t.Errorf("~/.bashrc was touched: %q, %v", b, err)
	}
	if n := env.ephemeralContainers(t, echo.pod); n != 0 {
		t.Errorf("the pod has %d ephemeral containers: the cluster was reached", n)
	}

	if r := p.runWith(t, homeEnv, "config", "trust"); r.code != 0 || !strings.Contains(r.stdout, "which sets env-file") {
		t.Fatalf("config trust: exit %d, stdout %q", r.code, r.stdout)
	}
	if r := p.runWith(t, homeEnv, "exec"); r.code != 0 {
		t.Fatalf("exec after trusting the file: exit %d", r.code)
	}
	if b, _ := os.ReadFile(bashrc); !strings.Contains(string(b), "ECHO_FROM_SECRET=s3cret") {
		t.Errorf("the trusted file's env-file was not written:\n%s", b)
	}
}

// In a pod that shares one PID namespace among its containers, the target's environment is its
// own even when another container started first and so has the lowest PID (a mesh proxy).
func TestSharedProcessNamespaceTarget(t *testing.T) {
	env := newEnv(t)
	p := env.plugin(t)
	container := func(name string) corev1.Container {
		return corev1.Container{
			Name: name, Image: testApp(), ImagePullPolicy: corev1.PullIfNotPresent,
			Command: []string{"/testapp", "sleep"},
			Env:     []corev1.EnvVar{{Name: "ROLE", Value: name}},
		}
	}
	proxy := container("proxy")
	// The kubelet starts the next container only when this hook has run: the proxy's process
	// is up, with the lower PID, before the app's exists.
	proxy.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"/testapp", "ls", "/"}}}}
	share := true
	env.createDeploymentSpec(t, "shared", corev1.PodSpec{ShareProcessNamespace: &share, Containers: []corev1.Container{proxy, container("app")}})
	if _, err := env.waitReadyPod(env.ctx(t), "app=shared"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"app", "proxy"} {
		r := p.run(t, "exec", "deployment/shared", "-c", c, "--", "env")
		if r.code != 0 {
			t.Fatalf("exec -c %s: exit %d", c, r.code)
		}
		if want := "ROLE=" + c + "\n"; !strings.Contains(r.stdout, want) {
			t.Errorf("exec -c %s: the environment lacks %q (another container's process was taken):\n%s", c, want, r.stdout)
		}
	}
}

// A sidecar gets NET_ADMIN only for a session that steals, NET_RAW only for one that mirrors. A
// later session reuses a sidecar that has what it needs, and adds a new one when none has.
func TestSidecarCapabilitiesPerSession(t *testing.T) {
	env := newEnv(t)
	echo := env.deployEcho(t)
	p := env.plugin(t)
	caps := func() [][]corev1.Capability {
		t.Helper()
		pod, err := env.client.CoreV1().Pods(env.namespace).Get(env.ctx(t), echo.pod, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var all [][]corev1.Capability
		for _, ec := range pod.Spec.EphemeralContainers {
			all = append(all, ec.SecurityContext.Capabilities.Add)
		}
		return all
	}
	run := func(wantReuse bool, args ...string) {
		t.Helper()
		r := p.run(t, append([]string{"exec", "pod/" + echo.pod}, args...)...)
		if r.code != 0 {
			t.Fatalf("exit %d", r.code)
		}
		if reused := strings.Contains(r.stderr, "reusing sidecar"); reused != wantReuse {
			t.Errorf("exec %s: reused %v, want %v", strings.Join(args, " "), reused, wantReuse)
		}
	}

	run(false, "--", "true") // mirror, the default
	run(false, "--steal", "--", "true")
	run(true, "--", "true")
	run(true, "--no-incoming", "--", "true")
	// In any order: the API server's merge of the patch decides where a new one goes.
	want := [][]corev1.Capability{{"NET_ADMIN", "SYS_PTRACE"}, {"NET_RAW", "SYS_PTRACE"}}
	got := caps()
	slices.SortFunc(got, func(a, b []corev1.Capability) int { return cmp.Compare(a[0], b[0]) })
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the sidecars' capabilities: %v, want %v", got, want)
	}
}
