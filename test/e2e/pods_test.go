package e2e

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Pods as they come (issue 17 item 5): a target with no shell and no libc, and a native
// sidecar as the target. A Windows node is refused before anything is added: the unit tests
// of plugin/internal/attach cover it, since the local cluster has none.

// A target image of one static binary on an empty base (the test app's): the environment, the
// files, outgoing connections and steal need nothing of the image.
func TestDistrolessTarget(t *testing.T) {
	e := newEnv(t)
	app := e.deployConfigApp(t)
	pl := e.plugin(t)
	client := buildLayerClient(t)

	root := strings.Fields(e.exec(t, app.pod, "http", "/testapp", "ls", "/"))
	for _, dir := range []string{"bin", "sbin", "lib", "lib64", "usr"} {
		if slices.Contains(root, dir) {
			t.Fatalf("the test app's image has /%s, not a scratch image: %q", dir, root)
		}
	}

	r := pl.run(t, "exec", "deployment/config", "--no-incoming", "--", "sh", "-c",
		fmt.Sprintf(`echo "GREETING=$GREETING"; %[1]s read %[2]s/config.yaml; %[1]s get http://%[3]s:8080/distroless`, client, appConfigDir, app.podIP))
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s", r.code, r.stdout)
	}
	for _, want := range []string{
		"GREETING=hello\n",
		fmt.Sprintf("%s/config.yaml: %q\n", appConfigDir, "greeting: hello\n"),
		`"path": "/distroless"`,
		fmt.Sprintf(`"hostname": %q`, app.pod),
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("missing %q in:\n%s", want, r.stdout)
		}
	}

	cmd := pl.command(t.Context(), "exec", "deployment/config", "--steal", "--", client, "serve", ":8080")
	cmd.Stdout = io.Discard
	sess := startBackground(t, cmd)
	defer sess.stop(syscall.SIGINT)
	url := "http://" + app.podIP + ":8080/stolen"
	sess.waitUntil(t, 30*time.Second, func() bool { return strings.HasPrefix(get(url), "local /stolen") }, func() string {
		return fmt.Sprintf("the pod's port never came to the program: %q", get(url))
	})
}

// A native sidecar (an init container with restartPolicy Always) is a target as kubectl exec
// takes it: by -c, with its own environment and mounts; without -c the target is the first
// regular container, as for kubectl exec.
func TestNativeSidecarTarget(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx(t)
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "mesh-config"},
		Data:       map[string]string{"mesh.yaml": "role: proxy\n"},
	}
	if _, err := e.client.CoreV1().ConfigMaps(e.namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	always := corev1.ContainerRestartPolicyAlways
	container := func(name string, role string, args ...string) corev1.Container {
		return corev1.Container{
			Name: name, Image: testApp(), ImagePullPolicy: corev1.PullIfNotPresent,
			Command: append([]string{"/testapp"}, args...),
			Env:     []corev1.EnvVar{{Name: "ROLE", Value: role}},
		}
	}
	mesh := container("mesh", "proxy", "tcp", "-addr", ":9000")
	mesh.RestartPolicy = &always
	mesh.VolumeMounts = []corev1.VolumeMount{{Name: "mesh", MountPath: "/etc/mesh"}}
	e.createDeploymentSpec(t, "native", corev1.PodSpec{
		InitContainers: []corev1.Container{mesh},
		Containers:     []corev1.Container{container("app", "app", "http", "-addr", ":8080")},
		Volumes: []corev1.Volume{{Name: "mesh", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name}},
		}}},
	})
	if _, err := e.waitReadyPod(ctx, "app=native"); err != nil {
		t.Fatalf("native Deployment: %v", err)
	}
	pl := e.plugin(t)
	client := buildLayerClient(t)

	r := pl.run(t, "exec", "deployment/native", "--", "sh", "-c", `echo "ROLE=$ROLE"`)
	if r.code != 0 || !strings.Contains(r.stdout, "ROLE=app\n") || !strings.Contains(r.stderr, "container app\n") {
		t.Errorf("without -c: exit %d, stdout %q; want the first regular container's ROLE=app", r.code, r.stdout)
	}

	r = pl.run(t, "exec", "deployment/native", "-c", "mesh", "--", "sh", "-c", fmt.Sprintf(`echo "ROLE=$ROLE"; %s read /etc/mesh/mesh.yaml`, client))
	if r.code != 0 {
		t.Fatalf("-c mesh: exit %d\nstdout:\n%s", r.code, r.stdout)
	}
	for _, want := range []string{"ROLE=proxy\n", fmt.Sprintf("/etc/mesh/mesh.yaml: %q\n", "role: proxy\n")} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("-c mesh: missing %q in:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "container mesh\n") {
		t.Errorf("-c mesh: the session does not say it targets mesh:\n%s", r.stderr)
	}
}
