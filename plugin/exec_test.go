package plugin

import (
	"errors"
	"strings"
	"testing"

	"github.com/remocal/kubectl-remocal/plugin/internal/attach"
)

// Off Linux, exec of a program fails with the layer's one-line reason before it reaches the
// cluster (this kubeconfig's server refuses connections, so any contact would fail otherwise),
// while --env-file alone goes on to the cluster.
func TestExecOfAProgramWithoutTheLayerFailsBeforeTheCluster(t *testing.T) {
	noLayer := errors.New("running a program under the layer needs Linux (seccomp user notification); on plan9 use --env-file or port-forward")
	saved := layerAvailable
	layerAvailable = func() error { return noLayer }
	t.Cleanup(func() { layerAvailable = saved })
	t.Setenv("KUBECONFIG", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())

	server := []string{"--server", "https://127.0.0.1:1", "--request-timeout", "2s"}
	_, _, err := execute(t, append([]string{"exec", "pod/web"}, append(server, "--", "env")...)...)
	if !errors.Is(err, noLayer) || err.Error() != noLayer.Error() {
		t.Fatalf("exec of a program: %v, want exactly %q", err, noLayer)
	}

	_, _, err = execute(t, append([]string{"exec", "pod/web", "--env-file", t.TempDir() + "/env"}, server...)...)
	if err == nil || errors.Is(err, noLayer) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("exec --env-file: %v, want a failure to reach the server, not the layer's", err)
	}
}

func TestExecSidecarNeeds(t *testing.T) {
	tests := []struct {
		name string
		o    ExecOptions
		want attach.Needs
	}{
		{name: "mirror by default", o: ExecOptions{command: []string{"srv"}}, want: attach.Needs{Capture: true}},
		{name: "steal", o: ExecOptions{command: []string{"srv"}, layerOptions: layerOptions{Steal: true}}, want: attach.Needs{Redirect: true}},
		{name: "no incoming", o: ExecOptions{command: []string{"srv"}, layerOptions: layerOptions{NoIncoming: true}}},
		{name: "env-file only", o: ExecOptions{}},
	}
	for _, tt := range tests {
		if got := tt.o.sidecarNeeds(); got != tt.want {
			t.Errorf("%s: needs %+v, want %+v", tt.name, got, tt.want)
		}
		// A session that steals names the flag, for the refusal where it cannot.
		if steals := tt.o.sidecarUse().Steals; (steals == "--steal") != tt.want.Redirect || steals != "" && steals != "--steal" {
			t.Errorf("%s: steals %q", tt.name, steals)
		}
	}
}

// A --user-label that other users' terminals would render as escapes is refused with the
// usage, before the cluster is reached.
func TestExecRefusesAnUnprintableUserLabel(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	for _, cmd := range [][]string{{"exec", "pod/web", "--", "true"}, {"port-forward", "pod/web", "-R", "8080:3000"}} {
		args := append([]string{cmd[0], cmd[1], "--server", "https://127.0.0.1:1", "--user-label", "\x1b[2Jalice"}, cmd[2:]...)
		_, _, err := execute(t, args...)
		if err == nil || !strings.Contains(err.Error(), "--user-label") {
			t.Errorf("%s with an escape in --user-label: %v, want a refusal naming the flag", cmd[0], err)
		}
	}
}
