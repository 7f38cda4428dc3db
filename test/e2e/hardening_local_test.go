package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The values a hostile Deployment sets: each would choose code that runs on the developer's
// machine if it reached it.
const (
	hostilePreload = "/remocal-e2e/evil.so"
	hostileGOFLAGS = "-remocal-e2e-no-such-flag"
)

// deployHostile runs the test app with LD_PRELOAD and GOFLAGS in its environment, and volumes
// mounted over /etc/ld.so.preload and below /usr.
func (e *env) deployHostile(t *testing.T) {
	t.Helper()
	ctx := e.ctx(t)
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "hostile"},
		Data:       map[string]string{"ld.so.preload": hostilePreload + "\n"},
	}
	if _, err := e.client.CoreV1().ConfigMaps(e.namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.createDeploymentSpec(t, "hostile", corev1.PodSpec{
		Containers: []corev1.Container{{
			Name: "app", Image: testApp(), ImagePullPolicy: corev1.PullIfNotPresent,
			Command: []string{"/testapp", "sleep"},
			Env: []corev1.EnvVar{
				{Name: "LD_PRELOAD", Value: hostilePreload},
				{Name: "GOFLAGS", Value: hostileGOFLAGS},
				{Name: "APP_GREETING", Value: "hello"},
			},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "hostile", MountPath: "/etc/ld.so.preload", SubPath: "ld.so.preload"},
				{Name: "scratch", MountPath: "/usr/local/lib/remocal-e2e"},
			},
		}},
		Volumes: []corev1.Volume{
			{Name: "hostile", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "hostile"}}}},
			{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		},
	})
	if _, err := e.waitReadyPod(ctx, "app=hostile"); err != nil {
		t.Fatalf("hostile Deployment: %v", err)
	}
}

// Issue 13, item 2: a Deployment whose env sets LD_PRELOAD and GOFLAGS: neither reaches the
// program nor go run's toolchain, unless --env-include names one (and then only the program);
// its volumes over /etc/ld.so.preload and /usr are not shown.
func TestHostileDeploymentStaysOffTheMachine(t *testing.T) {
	e := newEnv(t)
	e.deployHostile(t)
	pl := e.plugin(t)
	target := "deployment/hostile"

	t.Run("env", func(t *testing.T) {
		r := pl.run(t, "exec", target, "--", "env")
		if r.code != 0 {
			t.Fatalf("exit %d\nstdout:\n%s", r.code, r.stdout)
		}
		if !strings.Contains(r.stdout, "APP_GREETING=hello\n") {
			t.Errorf("the app's variable is missing:\n%s", r.stdout)
		}
		for _, v := range []string{"LD_PRELOAD=" + hostilePreload, "GOFLAGS=" + hostileGOFLAGS} {
			if strings.Contains(r.stdout, v) {
				t.Errorf("%s reached the program:\n%s", v, r.stdout)
			}
		}
		if !strings.Contains(r.stderr, "kept local: GOFLAGS, LD_PRELOAD (--env-include NAME to take one from the pod)") {
			t.Errorf("no line naming the kept variables:\n%s", r.stderr)
		}
	})

	t.Run("env-file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "remote.env")
		if r := pl.run(t, "exec", target, "--env-file", file); r.code != 0 {
			t.Fatalf("exit %d", r.code)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "APP_GREETING=hello\n") || strings.Contains(string(b), "LD_PRELOAD") || strings.Contains(string(b), "GOFLAGS") {
			t.Errorf("env file:\n%s", b)
		}
	})

	t.Run("go run", func(t *testing.T) {
		module := t.TempDir()
		for name, content := range map[string]string{
			"go.mod":  "module printenv\n\ngo 1.22\n",
			"main.go": "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {\n\tfmt.Printf(\"GOFLAGS=%q LD_PRELOAD=%q APP_GREETING=%q\\n\", os.Getenv(\"GOFLAGS\"), os.Getenv(\"LD_PRELOAD\"), os.Getenv(\"APP_GREETING\"))\n}\n",
		} {
			if err := os.WriteFile(filepath.Join(module, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		inModule := *pl
		inModule.dir = module
		r := inModule.run(t, "exec", target, "--", "go", "run", ".")
		if want := `GOFLAGS="" LD_PRELOAD="" APP_GREETING="hello"` + "\n"; r.code != 0 || r.stdout != want {
			t.Errorf("go run: exit %d, stdout %q, want %q", r.code, r.stdout, want)
		}
		// Taken on purpose, GOFLAGS reaches the program, and still not the toolchain, which
		// would fail on it.
		r = inModule.run(t, "exec", target, "--env-include", "GOFLAGS", "--", "go", "run", ".")
		if want := `GOFLAGS="` + hostileGOFLAGS + `" LD_PRELOAD="" APP_GREETING="hello"` + "\n"; r.code != 0 || r.stdout != want {
			t.Errorf("go run --env-include GOFLAGS: exit %d, stdout %q, want %q", r.code, r.stdout, want)
		}
	})

	t.Run("mounts over system paths", func(t *testing.T) {
		local, _ := os.ReadFile("/etc/ld.so.preload")
		r := pl.run(t, "exec", target, "--", "sh", "-c", "cat /etc/ld.so.preload 2>/dev/null; ls -d /usr/local/lib/remocal-e2e 2>&1; true")
		if r.code != 0 {
			t.Fatalf("exit %d\nstdout:\n%s", r.code, r.stdout)
		}
		if strings.Contains(r.stdout, hostilePreload) || !strings.HasPrefix(r.stdout, string(local)) {
			t.Errorf("the program saw the pod's /etc/ld.so.preload:\n%s", r.stdout)
		}
		if !strings.Contains(r.stdout, "No such file") {
			t.Errorf("the program saw the pod's /usr/local/lib/remocal-e2e:\n%s", r.stdout)
		}
		if !strings.Contains(r.stderr, "warning: the pod's /etc/ld.so.preload, /usr/local/lib/remocal-e2e stay local") {
			t.Errorf("no warning naming the paths left local:\n%s", r.stderr)
		}
	})
}
