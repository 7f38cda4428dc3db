package plugin

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func filesPod() *corev1.Pod {
	return &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "sidecar", VolumeMounts: []corev1.VolumeMount{{MountPath: "/other"}}},
		{Name: "app", VolumeMounts: []corev1.VolumeMount{
			{MountPath: "/etc/app/"},
			{MountPath: "/etc/nginx/nginx.conf", SubPath: "nginx.conf"},
			{MountPath: serviceAccountDir},
			{MountPath: "/data"},
		}},
	}}}
}

func TestRemoteCandidates(t *testing.T) {
	for _, c := range []struct {
		name string
		opts fsOptions
		want []string
	}{
		{"read: the container's mounts and the pod's files", fsOptions{FSMode: fsModeRead},
			[]string{"/etc/app", "/etc/nginx/nginx.conf", serviceAccountDir, "/data", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}},
		{"local: none", fsOptions{FSMode: fsModeLocal}, nil},
		{"--fs-local drops a match and what is under it", fsOptions{FSMode: fsModeWrite, FSLocal: []string{"/etc/hosts", "/var/run/secrets"}, FSRemote: []string{"/opt/*/conf"}},
			[]string{"/etc/app", "/etc/nginx/nginx.conf", "/data", "/etc/hostname", "/etc/resolv.conf", "/opt/*/conf"}},
		{"--fs-local globs", fsOptions{FSMode: fsModeRead, FSLocal: []string{"/etc/*"}},
			[]string{serviceAccountDir, "/data"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.opts.remoteCandidates(filesPod(), "app"); !slices.Equal(got, c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

// A native sidecar's mounts are its own, as for a regular container.
func TestRemoteCandidatesOfANativeSidecar(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	pod := filesPod()
	pod.Spec.InitContainers = []corev1.Container{
		{Name: "mesh", RestartPolicy: &always, VolumeMounts: []corev1.VolumeMount{{MountPath: "/etc/mesh"}}},
	}
	opts := fsOptions{FSMode: fsModeRead}
	if got, want := opts.remoteCandidates(pod, "mesh"), []string{"/etc/mesh", serviceAccountDir, "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// A pod's mount paths are its spec's to choose: those over this machine's system files or the
// program's own stay local.
func TestLeaveSystemPaths(t *testing.T) {
	program := filepath.Join(t.TempDir(), "app")
	if err := os.WriteFile(program, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	tree := remoteTree{
		dirs:  []string{"/etc", "/usr/local/lib", "/data", filepath.Dir(program), "/srv"},
		files: map[string][]byte{"/etc/ld.so.preload": []byte("/data/evil.so\n"), "/etc/hostname": []byte("web\n")},
	}
	refused := tree.leaveSystemPaths(programFiles([]string{program}))
	if want := []string{"/etc", "/etc/ld.so.preload", filepath.Dir(program), "/usr/local/lib"}; !slices.Equal(refused, want) {
		t.Errorf("refused %q, want %q", refused, want)
	}
	if want := []string{"/data", "/srv"}; !slices.Equal(tree.dirs, want) {
		t.Errorf("dirs %q, want %q", tree.dirs, want)
	}
	if _, ok := tree.files["/etc/hostname"]; !ok || len(tree.files) != 1 {
		t.Errorf("files %v, want /etc/hostname alone", tree.files)
	}
	// go run builds the program in the temporary directory: a pod's /tmp would hide it.
	t.Setenv("GOTMPDIR", "")
	t.Setenv("TMPDIR", "/tmp")
	tree = remoteTree{dirs: []string{"/tmp", "/data"}}
	if refused := tree.leaveSystemPaths(programFiles([]string{"go", "run", "."})); !slices.Equal(refused, []string{"/tmp"}) {
		t.Errorf("go run: refused %q, want /tmp", refused)
	}
}

func TestFSNotFound(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	if err := os.Mkdir(filepath.Join(home, ".kube"), 0o700); err != nil {
		t.Fatal(err)
	}
	o := fsOptions{FSMode: fsModeRead, FSMaxFileSize: "16Mi", FSNotFound: []string{"~/.kube", "/etc/app/*.key", filepath.Join(home, ".absent")}}
	if err := o.validateFS(); err != nil {
		t.Fatal(err)
	}
	hidden, err := o.hiddenLocalPaths()
	if err != nil || !slices.Equal(hidden, []string{filepath.Join(home, ".kube")}) {
		t.Fatalf("hidden %q, %v", hidden, err)
	}
	if !o.absent("/etc/app/tls.key") || o.absent("/etc/app/config.yaml") {
		t.Fatal("the remote glob does not match as it should")
	}
}

func TestValidateFS(t *testing.T) {
	for _, c := range []struct {
		opts fsOptions
		want string
	}{
		{fsOptions{FSMode: "ro", FSMaxFileSize: "1Mi"}, "--fs-mode must be read, write or local"},
		{fsOptions{FSMode: fsModeRead, FSMaxFileSize: "1Gi"}, "--fs-max-file-size must be between 1 and 16Mi"},
		{fsOptions{FSMode: fsModeRead, FSMaxFileSize: "lots"}, `--fs-max-file-size "lots"`},
		{fsOptions{FSMode: fsModeRead, FSMaxFileSize: "1Mi", FSRemote: []string{"etc/app"}}, "is not absolute"},
		{fsOptions{FSMode: fsModeRead, FSMaxFileSize: "1Mi", FSLocal: []string{"/etc/[app"}}, "syntax error in pattern"},
	} {
		err := c.opts.validateFS()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.opts, err, c.want)
		}
	}
	ok := fsOptions{FSMode: fsModeWrite, FSMaxFileSize: "64Ki"}
	if err := ok.validateFS(); err != nil || ok.maxFileSize != 64<<10 {
		t.Fatalf("%v, max %d", err, ok.maxFileSize)
	}
}
