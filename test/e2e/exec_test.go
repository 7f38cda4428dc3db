package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/remocal/kubectl-remocal/internal/syncbuf"
)

// plugin runs bin/kubectl-remocal (found on PATH, as kubectl finds it) against the test's
// namespace, with a client key of the test's own.
type plugin struct {
	path       string
	kubeconfig string
	configHome string // XDG_CONFIG_HOME: where the client key lives
	namespace  string
	dir        string // working directory of the plugin and so of the program; "" is the test's
	// bare leaves out --kubeconfig and -n: KUBECONFIG comes from the environment, the
	// namespace from a configuration file, as when a user types no flag at all.
	bare bool
}

func (e *env) plugin(t *testing.T) *plugin {
	t.Helper()
	path, err := exec.LookPath("kubectl-remocal")
	if err != nil {
		t.Skip("e2e: kubectl-remocal is not on PATH (make e2e builds it into bin/ and puts it there)")
	}
	return &plugin{path: path, kubeconfig: os.Getenv("KUBECONFIG"), configHome: t.TempDir(), namespace: e.namespace}
}

type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

func (p *plugin) command(ctx context.Context, args ...string) *exec.Cmd {
	// REMOCAL_CONFIG= keeps a configuration file of the machine's user out of the tests.
	environ := append(os.Environ(), "XDG_CONFIG_HOME="+p.configHome, "REMOCAL_CONFIG=")
	if p.bare {
		environ = append(environ, "KUBECONFIG="+p.kubeconfig)
	} else {
		args = append([]string{"--kubeconfig", p.kubeconfig, "-n", p.namespace}, args...)
	}
	cmd := exec.CommandContext(ctx, p.path, args...)
	cmd.Env = environ
	cmd.Dir = p.dir
	// A program that outlived the plugin would hold its output pipes open: never wait forever.
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

func (p *plugin) run(t *testing.T, args ...string) result {
	t.Helper()
	return p.runWith(t, nil, args...)
}

// runWith is run with more environment variables.
func (p *plugin) runWith(t *testing.T, environ []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := p.command(ctx, args...)
	cmd.Env = append(cmd.Env, environ...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	begin := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(begin)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("run plugin: %v", err)
	}
	t.Logf("kubectl remocal %s: exit %d in %s\nstderr:\n%s", strings.Join(args, " "), r.code, r.took.Round(time.Millisecond), r.stderr)
	return r
}

func TestExecEnvironment(t *testing.T) {
	env := newEnv(t)
	env.deployEcho(t)
	p := env.plugin(t)

	r := p.run(t, "exec", "deployment/echo", "--", "env")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	if !strings.Contains(r.stdout, "ECHO_FROM_SECRET=s3cret\n") {
		t.Errorf("the Secret's variable (envFrom) is missing:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "KUBERNETES_SERVICE_HOST=") {
		t.Errorf("the service-link variables are missing:\n%s", r.stdout)
	}
	if want := "PATH=" + os.Getenv("PATH") + "\n"; !strings.Contains(r.stdout, want) {
		t.Errorf("PATH is not the local one (want %q):\n%s", want, r.stdout)
	}

	t.Run("env-file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "remote.env")
		r := p.run(t, "exec", "deployment/echo", "--env-file", file, "-e", "EXTRA=1")
		if r.code != 0 {
			t.Fatalf("exit %d", r.code)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "ECHO_FROM_SECRET=s3cret\n") || !strings.Contains(string(b), "EXTRA=1\n") || strings.Contains(string(b), "PATH=") {
			t.Errorf("env file:\n%s", b)
		}
	})
}

func TestExecExitCodeAndSignals(t *testing.T) {
	env := newEnv(t)
	env.deployEcho(t)
	p := env.plugin(t)

	if r := p.run(t, "exec", "deployment/echo", "--", "sh", "-c", "exit 7"); r.code != 7 {
		t.Fatalf("exit code %d, want 7", r.code)
	}

	// SIGINT sent to the plugin alone (not to a terminal's process group) reaches the program.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := p.command(ctx, "exec", "deployment/echo", "--", "sh", "-c", `trap 'echo got-sigint; exit 3' INT; echo ready; while true; do sleep 0.1; done`)
	var stdout, stderr syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(stdout.String(), "ready") {
		if time.Now().After(deadline) {
			t.Fatalf("the program never started; stderr:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(stdout.String(), "got-sigint") {
		t.Fatalf("after SIGINT: %v, stdout %q, stderr:\n%s", err, stdout.String(), stderr.String())
	}
}

func TestExecReusesSidecar(t *testing.T) {
	env := newEnv(t)
	echo := env.deployEcho(t)
	p := env.plugin(t)

	cold := p.run(t, "exec", "pod/"+echo.pod, "--", "true")
	if cold.code != 0 {
		t.Fatalf("first exec: exit %d", cold.code)
	}
	before := env.ephemeralContainers(t, echo.pod)
	warm := p.run(t, "exec", "pod/"+echo.pod, "--", "true")
	if warm.code != 0 {
		t.Fatalf("second exec: exit %d", warm.code)
	}
	if after := env.ephemeralContainers(t, echo.pod); after != before {
		t.Errorf("ephemeral containers grew from %d to %d: the sidecar was not reused", before, after)
	}
	if !strings.Contains(warm.stderr, "reusing sidecar") {
		t.Errorf("second exec did not say it reused the sidecar")
	}
	if warm.took >= cold.took {
		t.Errorf("warm start %s is not faster than cold start %s", warm.took, cold.took)
	}
	t.Logf("cold start %s, warm start %s", cold.took.Round(time.Millisecond), warm.took.Round(time.Millisecond))
}

func TestExecBaselineNamespace(t *testing.T) {
	env := newEnv(t)
	env.labelNamespace(t, "pod-security.kubernetes.io/enforce", "baseline")
	env.deployEcho(t)
	p := env.plugin(t)

	r := p.run(t, "exec", "deployment/echo", "--", "env")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	if !strings.Contains(r.stderr, `Pod Security "baseline"`) || !strings.Contains(r.stderr, "no steal") {
		t.Errorf("no clear message about what baseline takes away")
	}
	if !strings.Contains(r.stdout, "ECHO_FROM_SECRET=s3cret") {
		t.Errorf("the environment was not served under baseline")
	}

	// Most apps do not run as root. Baseline forbids adding SYS_PTRACE, without which the
	// sidecar, root, may not open such a target's environ or root: it opens them as the target's
	// user. The session must serve the environment and the pod's files all the same.
	t.Run("a target that runs as another user", func(t *testing.T) {
		user := int64(1000)
		env.createDeploymentSpec(t, "nonroot", corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{RunAsUser: &user, RunAsGroup: &user},
			Containers: []corev1.Container{{
				Name:            "app",
				Image:           testApp(),
				ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         []string{"/testapp", "http", "-addr", ":8080"},
				Env:             []corev1.EnvVar{{Name: "NONROOT_VAR", Value: "from-the-pod"}},
			}},
		})
		if _, err := env.waitReadyPod(env.ctx(t), "app=nonroot"); err != nil {
			t.Fatal(err)
		}
		r := p.run(t, "exec", "deployment/nonroot", "--", "sh", "-c",
			"echo NONROOT_VAR=$NONROOT_VAR; cat /var/run/secrets/kubernetes.io/serviceaccount/namespace")
		if r.code != 0 {
			t.Fatalf("exit %d", r.code)
		}
		if !strings.Contains(r.stdout, "NONROOT_VAR=from-the-pod") {
			t.Errorf("the environment of a non-root target was not served under baseline:\n%s", r.stdout)
		}
		if !strings.Contains(r.stdout, env.namespace) {
			t.Errorf("the pod's files of a non-root target were not served under baseline:\n%s", r.stdout)
		}
	})
}

func TestExecFailsFastAndClearly(t *testing.T) {
	env := newEnv(t)
	echo := env.deployEcho(t)
	p := env.plugin(t)

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"missing pod", []string{"exec", "pod/does-not-exist", "--", "true"}, "not found"},
		{"unknown kind", []string{"exec", "cronjob/x", "--", "true"}, "is not supported"},
		{"missing container", []string{"exec", "pod/" + echo.pod, "-c", "nope", "--", "true"}, "its containers are: grpc, http, tcp, udp"},
		// A registry address that refuses at once: the failure is the pull's, not a DNS timeout's.
		{"image that cannot be pulled", []string{"exec", "pod/" + echo.pod, "--sidecar-image", "127.0.0.1:5999/remocal/no-such-image:1", "--", "true"}, "the sidecar cannot start"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := p.run(t, c.args...)
			assertOneLineError(t, r, c.want)
		})
	}

	t.Run("missing RBAC permission", func(t *testing.T) {
		limited := env.limitedKubeconfig(t)
		lp := *p
		lp.kubeconfig = limited
		r := lp.run(t, "exec", "pod/"+echo.pod, "--", "true")
		assertOneLineError(t, r, "patch pods/ephemeralcontainers")
	})
}

func assertOneLineError(t *testing.T, r result, want string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("exit 0, want a failure")
	}
	if r.took > 10*time.Second {
		t.Errorf("took %s, want under 10s", r.took)
	}
	var errLines []string
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if strings.HasPrefix(l, "error: ") {
			errLines = append(errLines, l)
		}
	}
	if len(errLines) != 1 || !strings.Contains(errLines[0], want) {
		t.Errorf("want one error line containing %q, got:\n%s", want, r.stderr)
	}
}

func (e *env) ephemeralContainers(t *testing.T, pod string) int {
	t.Helper()
	p, err := e.client.CoreV1().Pods(e.namespace).Get(e.ctx(t), pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(p.Spec.EphemeralContainers)
}

func (e *env) labelNamespace(t *testing.T, key, value string) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, key, value)
	if _, err := e.client.CoreV1().Namespaces().Patch(e.ctx(t), e.namespace, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// limitedKubeconfig returns a kubeconfig for a service account that may read pods but not add
// ephemeral containers: a developer without the needed RBAC verb.
func (e *env) limitedKubeconfig(t *testing.T) string {
	t.Helper()
	ctx := e.ctx(t)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "limited"}}
	if _, err := e.client.CoreV1().ServiceAccounts(e.namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"", "apps"}, Resources: []string{"pods", "deployments", "replicasets"}, Verbs: []string{"get", "list", "watch"}}},
	}
	if _, err := e.client.RbacV1().Roles(e.namespace).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "limited-pod-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "pod-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "limited", Namespace: e.namespace}},
	}
	if _, err := e.client.RbacV1().RoleBindings(e.namespace).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := e.client.CoreV1().ServiceAccounts(e.namespace).CreateToken(ctx, "limited", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: e.config.Host, CertificateAuthority: e.config.CAFile, CertificateAuthorityData: e.config.CAData}
	cfg.AuthInfos["limited"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "limited", Namespace: e.namespace}
	cfg.CurrentContext = "c"
	path := filepath.Join(t.TempDir(), "limited.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// kubectl completes "kubectl remocal exec <TAB>" through kubectl_complete-remocal: target kinds,
// then names of that kind, then the pod's containers for -c.
func TestCompletion(t *testing.T) {
	e := newEnv(t)
	e.deployEcho(t)
	p := e.plugin(t)
	complete, err := exec.LookPath("kubectl_complete-remocal")
	if err != nil {
		t.Skip("kubectl_complete-remocal is not on PATH (make build puts it in bin/)")
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"exec", "dep"}, "deployment/\n"},
		{[]string{"exec", "deployment/"}, "deployment/echo\n"},
		{[]string{"port-forward", "deployment/ec"}, "deployment/echo\n"},
		{[]string{"exec", "deployment/echo", "-c", "g"}, "grpc\n"},
	} {
		cmd := exec.Command(complete, append([]string{"--kubeconfig", p.kubeconfig, "-n", p.namespace}, tt.args...)...)
		out, err := cmd.Output()
		if err != nil || !strings.HasPrefix(string(out), tt.want) {
			t.Errorf("completing %q: %q, %v; want %q first", tt.args, out, err, tt.want)
		}
	}
}
