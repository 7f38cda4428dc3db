package e2e

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// lsSidecar is one sidecar of `ls -o json`.
type lsSidecar struct {
	Namespace     string `json:"namespace"`
	Pod           string `json:"pod"`
	Sidecar       string `json:"sidecar"`
	Target        string `json:"target"`
	State         string `json:"state"`
	Reason        string `json:"reason"`
	Owner         string `json:"owner"`
	Yours         bool   `json:"yours"`
	Subscriptions []struct {
		Port uint16 `json:"port"`
		Mode string `json:"mode"`
	} `json:"subscriptions"`
	SubscriptionsUnknown string `json:"subscriptionsUnknown"`
	Sessions             []struct {
		Label         string    `json:"label"`
		Since         time.Time `json:"since"`
		Sidecar       string    `json:"sidecar"`
		Subscriptions []struct {
			Port uint16 `json:"port"`
			Mode string `json:"mode"`
		} `json:"subscriptions"`
	} `json:"sessions"`
}

// ls runs `ls -o json` with args and returns the sidecars.
func (p *plugin) ls(t *testing.T, args ...string) []lsSidecar {
	t.Helper()
	r := p.run(t, append([]string{"ls", "-o", "json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("ls: exit %d\n%s", r.code, r.stdout)
	}
	var list struct {
		Sidecars []lsSidecar `json:"sidecars"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("ls -o json: %v\n%s", err, r.stdout)
	}
	return list.Sidecars
}

// lsRow is the table row of sidecar in `ls` with args.
func (p *plugin) lsRow(t *testing.T, sidecar string, args ...string) string {
	t.Helper()
	r := p.run(t, append([]string{"ls"}, args...)...)
	if r.code != 0 {
		t.Fatalf("ls: exit %d\n%s", r.code, r.stdout)
	}
	t.Logf("ls %s:\n%s", strings.Join(args, " "), r.stdout)
	for line := range strings.Lines(r.stdout) {
		if strings.Contains(line, sidecar) {
			return strings.TrimSpace(line)
		}
	}
	t.Fatalf("ls does not list %s:\n%s", sidecar, r.stdout)
	return ""
}

// TestLs: ls lists the sidecar an exec left running as yours, the port a session steals, and
// the sidecar as terminated once its worker is killed; another key sees it as not its own.
func TestLs(t *testing.T) {
	e := newEnv(t)
	s := &layerSetup{env: e, echo: e.deployEcho(t), plugin: e.plugin(t), layerclient: buildLayerClient(t)}

	if r := s.plugin.run(t, "ls"); r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "No remocal sidecars in namespace "+e.namespace) {
		t.Fatalf("ls before any exec: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// --steal: the sidecar has NET_ADMIN, so the steal session below reuses it.
	if r := s.plugin.run(t, "exec", "deployment/echo", "--steal", "--", "true"); r.code != 0 {
		t.Fatalf("exec: exit %d", r.code)
	}
	list := s.plugin.ls(t)
	if len(list) != 1 {
		t.Fatalf("ls lists %d sidecars, want the one exec added: %+v", len(list), list)
	}
	sc := list[0]
	if sc.Pod != s.echo.pod || sc.State != "running" || !sc.Yours || sc.Subscriptions == nil || len(sc.Subscriptions) != 0 || sc.Sessions == nil || len(sc.Sessions) != 0 {
		t.Fatalf("after exec: %+v, want running, yours, no subscription, no session (ls's own is not listed)", sc)
	}
	row := s.plugin.lsRow(t, sc.Sidecar)
	for _, want := range []string{s.echo.pod, "running", "(you)", sc.Owner[len("sha256:") : len("sha256:")+12], "none"} {
		if !strings.Contains(row, want) {
			t.Errorf("ls row %q lacks %q", row, want)
		}
	}

	other := *s.plugin
	other.configHome = t.TempDir() // another client key
	otherRow := other.lsRow(t, sc.Sidecar, "-A")
	if !strings.HasPrefix(otherRow, e.namespace+" ") || strings.Contains(otherRow, "(you)") || !strings.HasSuffix(otherRow, " -") {
		t.Errorf("ls -A with another key: %q, want the namespace first, not yours, subscriptions -", otherRow)
	}

	started := time.Now()
	steal := startIncoming(t, s, ":8080", func(*incomingSession) bool {
		return strings.HasPrefix(get("http://"+s.echo.podIP+":8080/ready"), "local ")
	},
		"--steal", "--user-label", "alice on e2e")
	list = s.plugin.ls(t, "pod/"+s.echo.pod)
	if len(list) != 1 || len(list[0].Subscriptions) != 1 || list[0].Subscriptions[0].Port != 8080 || list[0].Subscriptions[0].Mode != "steal" {
		t.Fatalf("while a session steals 8080: %+v", list)
	}
	// The session, by its label, since it started (the sidecar's clock is the node's, this
	// machine's), with its port.
	if ss := list[0].Sessions; len(ss) != 1 || ss[0].Label != "alice on e2e" || ss[0].Sidecar != sc.Sidecar ||
		ss[0].Since.Before(started.Add(-time.Second)) || ss[0].Since.After(time.Now()) ||
		len(ss[0].Subscriptions) != 1 || ss[0].Subscriptions[0].Port != 8080 || ss[0].Subscriptions[0].Mode != "steal" {
		t.Fatalf("while alice steals 8080: sessions %+v", ss)
	}
	if row := s.plugin.lsRow(t, sc.Sidecar, "deployment/echo"); !strings.Contains(row, " alice on e2e (") || !strings.HasSuffix(row, "): 8080 steal") {
		t.Errorf("while alice steals 8080: row %q", row)
	}
	steal.stop(syscall.SIGTERM)

	// Without --user-label, the session is the kubeconfig user's.
	user := kubeconfigUser(t, s.plugin.kubeconfig)
	steal = startSteal(t, s)
	if ss := s.plugin.ls(t)[0].Sessions; len(ss) != 1 || ss[0].Label != user {
		t.Errorf("a session without --user-label: %+v, want the label %q", ss, user)
	}
	steal.stop(syscall.SIGTERM)

	worker := e.sidecarWorker(t, s.echo.pod)
	if err := syscall.Kill(worker, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	for {
		list = s.plugin.ls(t)
		if len(list) == 1 && list[0].State == "terminated" {
			break
		}
		if time.Since(begin) > 30*time.Second {
			t.Fatalf("30 s after its worker was killed, the sidecar is %+v", list)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("ls shows the sidecar terminated %s after its worker was killed", time.Since(begin).Round(100*time.Millisecond))
	if list[0].SubscriptionsUnknown != "not running" {
		t.Errorf("terminated sidecar: %+v", list[0])
	}
	row = s.plugin.lsRow(t, sc.Sidecar)
	if !strings.Contains(row, "terminated (Error, exit 1)") || !strings.HasSuffix(row, " -") {
		t.Errorf("terminated sidecar's row %q", row)
	}
}

// ls only looks: a sidecar nobody uses still ends when its TTL runs out, however often ls asks
// it (each answer is a connection to it).
func TestLsLeavesTheTTLAsItWas(t *testing.T) {
	e := newEnv(t)
	e.deployEcho(t)
	p := e.plugin(t)
	const ttl = 20 * time.Second
	if r := p.run(t, "exec", "deployment/echo", "--ttl", ttl.String(), "--", "true"); r.code != 0 {
		t.Fatalf("exec: exit %d", r.code)
	}
	ended := time.Now()
	for {
		list := p.ls(t)
		if len(list) == 1 && list[0].State == "terminated" {
			break
		}
		if time.Since(ended) > ttl+15*time.Second {
			t.Fatalf("the sidecar still runs %s after its only session ended, with ls asking every 3 s (TTL %s): %+v", time.Since(ended).Round(time.Second), ttl, list)
		}
		time.Sleep(3 * time.Second)
	}
	took := time.Since(ended)
	t.Logf("the sidecar ended %s after its only session, ls asking every 3 s (TTL %s)", took.Round(100*time.Millisecond), ttl)
	if took < ttl {
		t.Errorf("the sidecar ended %s after its session, before its TTL of %s", took, ttl)
	}
}

// kubeconfigUser is the user of kubeconfig's current context.
func kubeconfigUser(t *testing.T, kubeconfig string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok || c.AuthInfo == "" {
		t.Fatalf("kubeconfig %s: no user in its current context %q", kubeconfig, cfg.CurrentContext)
	}
	return c.AuthInfo
}
