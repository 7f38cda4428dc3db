package e2e

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// configApp is the test app's HTTP server with a ConfigMap as a volume and as a variable.
type configApp struct {
	pod, podIP string
}

// deployConfigApp runs the test app's HTTP server as container http of Deployment config, with
// ConfigMap app-settings at /etc/app and its key greeting as GREETING. The image is the test
// app's: one static binary on an empty base, no shell and no libc.
func (e *env) deployConfigApp(t *testing.T) configApp {
	t.Helper()
	ctx := e.ctx(t)
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "app-settings"},
		Data:       map[string]string{"config.yaml": "greeting: hello\n", "greeting": "hello"},
	}
	if _, err := e.client.CoreV1().ConfigMaps(e.namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ref := corev1.LocalObjectReference{Name: cm.Name}
	http := corev1.Container{
		Name: "http", Image: testApp(), ImagePullPolicy: corev1.PullIfNotPresent,
		Command: []string{"/testapp", "http", "-addr", ":8080"},
		Env: []corev1.EnvVar{{Name: "GREETING", ValueFrom: &corev1.EnvVarSource{
			ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: ref, Key: "greeting"},
		}}},
		VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: appConfigDir}},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
			PeriodSeconds: 1,
		},
	}
	e.createDeploymentSpec(t, "config", corev1.PodSpec{
		Containers: []corev1.Container{http},
		Volumes:    []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref}}}},
	})
	pod, err := e.waitReadyPod(ctx, "app=config")
	if err != nil {
		t.Fatalf("config Deployment: %v", err)
	}
	return configApp{pod: pod.Name, podIP: pod.Status.PodIP}
}

// containerID is the runtime's ID of the pod's container name now, "" before it has one.
func (e *env) containerID(t *testing.T, pod, name string) string {
	t.Helper()
	p, err := e.client.CoreV1().Pods(e.namespace).Get(e.ctx(t), pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append(p.Status.ContainerStatuses, p.Status.InitContainerStatuses...) {
		if s.Name == name {
			_, id, _ := strings.Cut(s.ContainerID, "://")
			return id
		}
	}
	return ""
}

// Done when of issue 17 item 2: killing the target container's main process, the session goes
// on; after the restart the environment and a ConfigMap file are served from the new process,
// and the stolen port comes to the program again.
func TestTargetContainerRestart(t *testing.T) {
	e := newEnv(t)
	app := e.deployConfigApp(t)
	pl := e.plugin(t)
	client := buildLayerClient(t)

	cmd := pl.command(t.Context(), "exec", "deployment/config", "--steal", "--", client, "serve", ":8080")
	cmd.Stdout = io.Discard
	sess := startBackground(t, cmd)
	defer sess.stop(syscall.SIGINT)
	// The program reads the pod's file on each request to the stolen port: both at once.
	read := "http://" + app.podIP + ":8080/read" + appConfigDir + "/config.yaml"
	want := fmt.Sprintf("local read %q\n", "greeting: hello\n")
	sess.waitUntil(t, 30*time.Second, func() bool { return get(read) == want }, func() string {
		return fmt.Sprintf("the stolen port never answered with the pod's file: %q", get(read))
	})

	// The restarted container takes its variables anew: GREETING changes with it.
	cm, err := e.client.CoreV1().ConfigMaps(e.namespace).Get(e.ctx(t), "app-settings", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["greeting"] = "hi"
	if _, err := e.client.CoreV1().ConfigMaps(e.namespace).Update(e.ctx(t), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	oldSidecar, _ := e.newestSidecar(t, app.pod)
	oldID := e.containerID(t, app.pod, "http")
	main := slices.Min(containerProcesses(t, oldID))
	if err := syscall.Kill(main, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the target's main process %d: %v", main, err)
	}
	t.Logf("killed the target's main process %d (container %.12s)", main, oldID)

	const restartLine = "target container http restarted (restart 1); environment and files now come from the new process"
	sess.waitUntil(t, 60*time.Second, func() bool { return strings.Contains(sess.stderr.String(), restartLine) }, func() string {
		return "the session never said the target restarted"
	})
	sess.waitUntil(t, 10*time.Second, func() bool {
		return strings.Contains(sess.stderr.String(), "the new target container's environment differs in GREETING;")
	}, func() string { return "the session never named the changed variable" })
	sess.waitUntil(t, 20*time.Second, func() bool { return get(read) == want }, func() string {
		return fmt.Sprintf("after the restart, the stolen port does not answer with the pod's file: %q", get(read))
	})

	// The file and the variables come through a new sidecar, for the new instance.
	newID := e.containerID(t, app.pod, "http")
	newSidecar, _ := e.newestSidecar(t, app.pod)
	if newID == oldID || newSidecar == oldSidecar {
		t.Fatalf("container %.12s, sidecar %s after the restart; want new ones (were %.12s, %s)", newID, newSidecar, oldID, oldSidecar)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	log, err := e.client.CoreV1().Pods(e.namespace).GetLogs(app.pod, &corev1.PodLogOptions{Container: newSidecar}).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), `"msg":"target",`) || !strings.Contains(string(log), fmt.Sprintf(`"container":"%.12s"`, newID)) {
		t.Errorf("sidecar %s does not serve container %.12s:\n%s", newSidecar, newID, log)
	}
}
