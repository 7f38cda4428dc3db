package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/remocal/kubectl-remocal/internal/syncbuf"
)

// filesApp is a running pod whose container mounts a ConfigMap, a Secret and an emptyDir.
type filesApp struct {
	pod string
}

const (
	appConfigDir = "/etc/app"
	appTLSDir    = "/etc/tls"
	scratchDir   = "/scratch"
	saTokenPath  = "/var/run/secrets/kubernetes.io/serviceaccount/token"
)

// deployFiles runs the test app with volumes: ConfigMap app-config at /etc/app, Secret
// app-tls at /etc/tls, an emptyDir at /scratch, and the service account's token.
func (e *env) deployFiles(t *testing.T) filesApp {
	t.Helper()
	ctx := e.ctx(t)
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "app-config"},
		Data:       map[string]string{"config.yaml": "greeting: hello\n", "level": "debug"},
	}
	if _, err := e.client.CoreV1().ConfigMaps(e.namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "app-tls"},
		StringData: map[string]string{"tls.key": "-----BEGIN PRIVATE KEY-----\nremocal-e2e\n"},
	}
	if _, err := e.client.CoreV1().Secrets(e.namespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	container := corev1.Container{
		Name: "app", Image: testApp(), ImagePullPolicy: corev1.PullIfNotPresent,
		Command: []string{"/testapp", "sleep"},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "config", MountPath: appConfigDir},
			{Name: "tls", MountPath: appTLSDir, ReadOnly: true},
			{Name: "scratch", MountPath: scratchDir},
		},
	}
	e.createDeploymentSpec(t, "files", corev1.PodSpec{
		Containers: []corev1.Container{container},
		Volumes: []corev1.Volume{
			{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}}}},
			{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "app-tls"}}},
			{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		},
	})
	pod, err := e.waitReadyPod(ctx, "app=files")
	if err != nil {
		t.Fatalf("files Deployment: %v", err)
	}
	return filesApp{pod: pod.Name}
}

// Done when of the remote-files issue: a program run locally reads the ConfigMap and Secret
// files at their pod paths, lists the mounted directory as the pod does, reads the service
// account token (a Go program, python3 and cat each), sees a ConfigMap edit once the kubelet
// has synced it, keeps local paths local, does not see --fs-not-found paths, and in write
// mode writes a file the pod sees.
func TestRemoteFiles(t *testing.T) {
	e := newEnv(t)
	app := e.deployFiles(t)
	pl := e.plugin(t)
	client := buildLayerClient(t)
	target := "deployment/files"

	inPod := func(command ...string) string {
		return e.exec(t, app.pod, "app", append([]string{"/testapp"}, command...)...)
	}
	wantToken := inPod("cat", saTokenPath)
	if wantToken == "" {
		t.Fatal("the pod has no service account token")
	}
	wantConfig := "greeting: hello\n"
	wantKey := "-----BEGIN PRIVATE KEY-----\nremocal-e2e\n"

	t.Run("read by a Go program, python3 and cat", func(t *testing.T) {
		r := pl.run(t, "exec", target, "--", client, "read", appConfigDir+"/config.yaml", appTLSDir+"/tls.key", saTokenPath, appConfigDir+"/missing")
		if r.code != 0 {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		for _, want := range []string{
			fmt.Sprintf("%s/config.yaml: %q", appConfigDir, wantConfig),
			fmt.Sprintf("%s/tls.key: %q", appTLSDir, wantKey),
			fmt.Sprintf("%s: %q", saTokenPath, wantToken),
			appConfigDir + "/missing: ENOENT",
		} {
			if !strings.Contains(r.stdout, want+"\n") {
				t.Errorf("missing %q in:\n%s", want, r.stdout)
			}
		}
		// go run: the toolchain stays outside the layer, the program it builds is under it.
		module := t.TempDir()
		for name, content := range map[string]string{
			"go.mod":  "module readconfig\n\ngo 1.22\n",
			"main.go": "package main\n\nimport \"os\"\n\nfunc main() {\n\tb, err := os.ReadFile(os.Args[1])\n\tif err != nil {\n\t\tpanic(err)\n\t}\n\tos.Stdout.Write(b)\n}\n",
		} {
			if err := os.WriteFile(filepath.Join(module, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		goRun := pl.command(e.ctx(t), "exec", target, "--", "go", "run", ".", appConfigDir+"/config.yaml")
		goRun.Dir = module
		if out, err := goRun.Output(); err != nil || string(out) != wantConfig {
			t.Errorf("go run: %q, %v", out, err)
		}
		needTool(t, "python3")
		r = pl.run(t, "exec", target, "--", "python3", "-c",
			"import sys; sys.stdout.write(open('"+appConfigDir+"/config.yaml').read() + open('"+appTLSDir+"/tls.key').read())")
		if r.code != 0 || r.stdout != wantConfig+wantKey {
			t.Errorf("python3: exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
		}
		r = pl.run(t, "exec", target, "--", "cat", appConfigDir+"/config.yaml", saTokenPath)
		if r.code != 0 || r.stdout != wantConfig+wantToken {
			t.Errorf("cat: exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("a file over --fs-max-file-size fails with EFBIG, and says why", func(t *testing.T) {
		r := pl.run(t, "exec", target, "--fs-max-file-size", "8", "--", client, "read", appConfigDir+"/config.yaml")
		if want := appConfigDir + "/config.yaml: EFBIG\n"; r.stdout != want {
			t.Fatalf("got %q, want %q\nstderr:\n%s", r.stdout, want, r.stderr)
		}
		if !strings.Contains(r.stderr, "is larger than --fs-max-file-size (8 bytes)") {
			t.Fatalf("no reason on stderr:\n%s", r.stderr)
		}
	})

	t.Run("the listing is the pod's", func(t *testing.T) {
		want := inPod("ls", appConfigDir)
		if !strings.Contains(want, "..data\n") {
			t.Fatalf("the pod's listing has no ..data: %q", want)
		}
		r := pl.run(t, "exec", target, "--", client, "ls", appConfigDir)
		if r.code != 0 || r.stdout != want {
			t.Fatalf("local listing %q (exit %d), pod's %q\nstderr:\n%s", r.stdout, r.code, want, r.stderr)
		}
	})

	t.Run("a ConfigMap edit is seen after the kubelet's sync", func(t *testing.T) {
		ctx := e.ctx(t)
		// A program that watches its configuration file and reads it again when told.
		var watchOut syncbuf.Buffer
		watcher := pl.command(ctx, "exec", target, "--", client, "watch", appConfigDir+"/config.yaml")
		watcher.Stdout = &watchOut
		bg := startBackground(t, watcher)
		bg.waitUntil(t, 30*time.Second, func() bool { return strings.Contains(watchOut.String(), "watching") },
			func() string { return "the watcher did not start: " + watchOut.String() })
		cm, err := e.client.CoreV1().ConfigMaps(e.namespace).Get(ctx, "app-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm.Data["config.yaml"] = "greeting: edited\n"
		if _, err := e.client.CoreV1().ConfigMaps(e.namespace).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		// A change of the pod makes the kubelet sync its volumes now rather than at its next
		// periodic sync (up to a minute and more).
		patch := fmt.Sprintf(`{"metadata":{"annotations":{"remocal.dev/e2e-sync":"%d"}}}`, time.Now().UnixNano())
		if _, err := e.client.CoreV1().Pods(e.namespace).Patch(ctx, app.pod, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(context.Context) (bool, error) {
			return inPod("cat", appConfigDir+"/config.yaml") == "greeting: edited\n", nil
		}); err != nil {
			t.Fatalf("the kubelet did not update the volume: %v", err)
		}
		// A fresh read sees the new content.
		r := pl.run(t, "exec", target, "--", client, "read", appConfigDir+"/config.yaml")
		if want := fmt.Sprintf("%s/config.yaml: %q\n", appConfigDir, "greeting: edited\n"); r.stdout != want {
			t.Fatalf("got %q, want %q\nstderr:\n%s", r.stdout, want, r.stderr)
		}
		// The watcher was told (the file it watched went, as in the pod) and read it again.
		want := fmt.Sprintf("watching\n%q\n", "greeting: edited\n")
		bg.waitUntil(t, 10*time.Second, func() bool { return watchOut.String() == want },
			func() string { return fmt.Sprintf("the watcher printed %q, want %q", watchOut.String(), want) })
	})

	t.Run("local paths stay local and --fs-not-found hides", func(t *testing.T) {
		home := t.TempDir()
		kubeconfig := filepath.Join(home, ".kube", "config")
		if err := os.MkdirAll(filepath.Dir(kubeconfig), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(kubeconfig, []byte("local kubeconfig\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		source, err := filepath.Abs("files_test.go")
		if err != nil {
			t.Fatal(err)
		}
		libc, _ := filepath.Glob("/usr/lib/*/libc.so.6")
		if len(libc) == 0 {
			t.Fatal("no /usr/lib/*/libc.so.6 here")
		}
		args := []string{"exec", target, "--fs-not-found", filepath.Join(home, ".kube"), "--", "sh", "-c",
			`head -c 15 "$1"; echo; cat "$2" >/dev/null && echo libc ok; cat "$3" || echo kubeconfig hidden`, "sh",
			source, libc[0], kubeconfig}
		r := pl.run(t, args...)
		if r.code != 0 {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		if want := "package e2e\n\nim\nlibc ok\nkubeconfig hidden\n"; r.stdout != want {
			t.Fatalf("got %q, want %q\nstderr:\n%s", r.stdout, want, r.stderr)
		}
		if !strings.Contains(r.stderr, "No such file or directory") {
			t.Errorf("cat of the hidden kubeconfig did not say ENOENT:\n%s", r.stderr)
		}
		// Without the flag the same file is there: the hiding was the flag's doing.
		r = pl.run(t, "exec", target, "--", "cat", kubeconfig)
		if r.stdout != "local kubeconfig\n" {
			t.Fatalf("without --fs-not-found: %q\nstderr:\n%s", r.stdout, r.stderr)
		}
	})

	t.Run("--fs-local and --fs-mode local keep the local files", func(t *testing.T) {
		// The ConfigMap's content depends on whether the edit above ran: only its presence counts.
		r := pl.run(t, "exec", target, "--fs-local", appTLSDir, "--", client, "read", appConfigDir+"/config.yaml", appTLSDir+"/tls.key")
		if !strings.HasPrefix(r.stdout, appConfigDir+`/config.yaml: "greeting: `) || !strings.HasSuffix(r.stdout, "\n"+appTLSDir+"/tls.key: ENOENT\n") {
			t.Errorf("--fs-local %s: got %q, want the ConfigMap's file and no Secret\nstderr:\n%s", appTLSDir, r.stdout, r.stderr)
		}
		r = pl.run(t, "exec", target, "--fs-mode", "local", "--", client, "read", appConfigDir+"/config.yaml", saTokenPath)
		want := fmt.Sprintf("%s/config.yaml: ENOENT\n%s: ENOENT\n", appConfigDir, saTokenPath)
		if r.stdout != want {
			t.Errorf("--fs-mode local: got %q, want %q\nstderr:\n%s", r.stdout, want, r.stderr)
		}
	})

	t.Run("read mode refuses writes", func(t *testing.T) {
		r := pl.run(t, "exec", target, "--", "sh", "-c", "echo x > "+scratchDir+"/refused")
		if r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
	})

	t.Run("write mode reaches the pod", func(t *testing.T) {
		r := pl.run(t, "exec", target, "--fs-mode", "write", "--", "sh", "-c",
			"mkdir "+scratchDir+"/out && printf 'written locally\\n' > "+scratchDir+"/out/result.txt")
		if r.code != 0 {
			t.Fatalf("exit %d\nstderr:\n%s", r.code, r.stderr)
		}
		if got := inPod("cat", scratchDir+"/out/result.txt"); got != "written locally\n" {
			t.Fatalf("the pod has %q", got)
		}
	})
}
