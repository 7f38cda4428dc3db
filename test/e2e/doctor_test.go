package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// doctorReport is `kubectl remocal doctor -o json`, as tools read it.
type doctorReport struct {
	Ready  bool `json:"ready"`
	Checks []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
		Detail string `json:"detail"`
		Fix    string `json:"fix"`
	} `json:"checks"`
}

func (p *plugin) doctor(t *testing.T, args ...string) (doctorReport, result) {
	t.Helper()
	r := p.run(t, append([]string{"doctor", "-o", "json"}, args...)...)
	var rep doctorReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("doctor -o json: %v:\n%s", err, r.stdout)
	}
	return rep, r
}

// row returns the named row's status, detail and fix; "" when there is no such row.
func (rep doctorReport) row(name string) (status, detail, fix string) {
	for _, c := range rep.Checks {
		if c.Name == name {
			return c.Status, c.Detail, c.Fix
		}
	}
	return "", "", ""
}

// machineRows depend on the machine the tests run on, not on the cluster: allowed to warn.
var machineRows = map[string]bool{"user namespaces": true, "/dev/fuse": true}

// doctorBound is the time doctor promises to end within; the runs add process start-up.
const doctorBound = 16 * time.Second

// In a privileged namespace everything exec needs works: exit 0, every cluster row ok, and the
// sidecar doctor added is the one exec then reuses.
func TestDoctor(t *testing.T) {
	env := newEnv(t)
	env.deployEcho(t)
	p := env.plugin(t)

	table := p.run(t, "doctor", "deployment/echo")
	if table.code != 0 {
		t.Fatalf("doctor: exit %d\n%s", table.code, table.stdout)
	}
	if table.took > doctorBound {
		t.Errorf("doctor took %s, want under %s", table.took, doctorBound)
	}
	lines := strings.Split(strings.TrimSpace(table.stdout), "\n")
	if f := strings.Fields(lines[0]); len(f) != 4 || f[0] != "CHECK" || f[1] != "STATUS" {
		t.Errorf("table header %q", lines[0])
	}
	t.Logf("doctor deployment/echo in %s:\n%s", table.took.Round(time.Millisecond), table.stdout)

	rep, r := p.doctor(t, "deployment/echo")
	if r.code != 0 || !rep.Ready {
		t.Fatalf("doctor -o json: exit %d, ready %v", r.code, rep.Ready)
	}
	for _, c := range rep.Checks {
		if c.Status != "ok" && !(machineRows[c.Name] && c.Status == "warn") {
			t.Errorf("row %q is %s: %s (fix: %s)", c.Name, c.Status, c.Detail, c.Fix)
		}
	}
	for _, name := range []string{"api server", "ephemeral containers", "rbac patch pods/ephemeralcontainers", "target", "pod security", "steal/mirror", "sidecar", "direct UDP", "port-forward", "environment"} {
		if status, _, _ := rep.row(name); status == "" {
			t.Errorf("no %q row", name)
		}
	}
	if _, detail, _ := rep.row("sidecar"); !strings.Contains(detail, "reused") {
		t.Errorf("the second doctor did not reuse the first one's sidecar: %s", detail)
	}

	// doctor's sidecar is pinned to the user's key, with exec's image and target: exec reuses it.
	if r := p.run(t, "exec", "deployment/echo", "--", "true"); r.code != 0 || !strings.Contains(r.stderr, "reusing sidecar") {
		t.Errorf("exec after doctor: exit %d, and it did not reuse doctor's sidecar", r.code)
	}

	t.Run("missing RBAC permission", func(t *testing.T) {
		lp := *p
		lp.kubeconfig = env.limitedKubeconfig(t)
		lp.configHome = t.TempDir() // another user: no sidecar of theirs to reuse
		rep, r := lp.doctor(t, "deployment/echo")
		if r.code != 1 || rep.Ready {
			t.Errorf("exit %d, ready %v; want 1, false", r.code, rep.Ready)
		}
		status, detail, fix := rep.row("rbac patch pods/ephemeralcontainers")
		if status != "fail" || !strings.Contains(detail, "denied") || !strings.Contains(fix, "patch pods/ephemeralcontainers") {
			t.Errorf("rbac row: %s: %s (fix: %s)", status, detail, fix)
		}
		// Without get on namespaces the level is assumed, and said to be.
		if status, detail, _ := rep.row("pod security"); status != "warn" || !strings.Contains(detail, "assumed privileged") {
			t.Errorf("pod security: %s: %s", status, detail)
		}
		if status, detail, _ := rep.row("sidecar"); status != "fail" || !strings.Contains(detail, "patch pods/ephemeralcontainers") {
			t.Errorf("sidecar: %s: %s", status, detail)
		}
	})
}

// Under baseline, exec works but steal cannot: doctor says so, and why, and when mirror can.
func TestDoctorBaselineNamespace(t *testing.T) {
	env := newEnv(t)
	env.labelNamespace(t, "pod-security.kubernetes.io/enforce", "baseline")
	env.deployEcho(t)
	p := env.plugin(t)

	table := p.run(t, "doctor", "deployment/echo")
	if table.code != 0 {
		t.Fatalf("doctor: exit %d, want 0 (exec works under baseline)\n%s", table.code, table.stdout)
	}
	t.Logf("doctor deployment/echo under baseline:\n%s", table.stdout)
	var stealRow string
	for _, l := range strings.Split(table.stdout, "\n") {
		if strings.HasPrefix(l, "steal/mirror ") {
			stealRow = l
		}
	}
	for _, want := range []string{" warn ", "unavailable", "NET_ADMIN", "baseline", "privileged"} {
		if !strings.Contains(stealRow, want) {
			t.Errorf("steal/mirror row lacks %q: %q", want, stealRow)
		}
	}

	rep, _ := p.doctor(t, "deployment/echo")
	status, detail, fix := rep.row("steal/mirror")
	if status != "warn" || !strings.Contains(detail, "Pod Security baseline") || !strings.Contains(fix, "pod-security.kubernetes.io/enforce=privileged") {
		t.Errorf("steal/mirror: %s: %s (fix: %s)", status, detail, fix)
	}
	if status, detail, _ := rep.row("pod security"); status != "ok" || !strings.HasPrefix(detail, "baseline") {
		t.Errorf("pod security: %s: %s", status, detail)
	}
	// What baseline leaves works, checked for real through the sidecar.
	for _, name := range []string{"sidecar", "port-forward", "environment"} {
		if status, detail, _ := rep.row(name); status != "ok" {
			t.Errorf("%s: %s: %s", name, status, detail)
		}
	}
}

// An API server that accepts connections and never answers: one row says so, exit 1, and the
// whole run ends within its bound. No cluster is needed.
func TestDoctorUnreachableCluster(t *testing.T) {
	path, err := exec.LookPath("kubectl-remocal")
	if err != nil {
		t.Skip("e2e: kubectl-remocal is not on PATH (make e2e builds it into bin/ and puts it there)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn // open and unanswered until the listener closes at the end
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	kubeconfig := filepath.Join(t.TempDir(), "stuck.kubeconfig")
	config := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: stuck, cluster: {server: "https://%s", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: stuck, context: {cluster: stuck, user: u}}]
current-context: stuck
`, ln.Addr())
	if err := os.WriteFile(kubeconfig, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &plugin{path: path, kubeconfig: kubeconfig, configHome: t.TempDir(), namespace: "default"}

	rep, r := p.doctor(t, "deployment/web")
	if r.code != 1 || rep.Ready {
		t.Errorf("exit %d, ready %v; want 1, false", r.code, rep.Ready)
	}
	if r.took > doctorBound {
		t.Errorf("doctor took %s against an API server that does not answer, want under %s", r.took, doctorBound)
	}
	last := rep.Checks[len(rep.Checks)-1]
	if last.Name != "api server" || last.Status != "fail" || !strings.Contains(last.Detail, "no answer within") {
		t.Errorf("last row %+v, want the API server's failure", last)
	}
	for _, c := range rep.Checks {
		if c.Status == "fail" && c.Name != "api server" {
			t.Errorf("row %q failed too: %s", c.Name, c.Detail)
		}
	}
}
