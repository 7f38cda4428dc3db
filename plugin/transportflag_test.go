package plugin

import (
	"slices"
	"strings"
	"testing"

	"github.com/remocal/kubectl-remocal/plugin/internal/attach"
	"github.com/remocal/kubectl-remocal/plugin/internal/configfile"
)

func TestTransportModeSet(t *testing.T) {
	for _, s := range []string{"auto", "direct", "port-forward"} {
		m := transportFlag(attach.TransportAuto)
		if err := m.Set(s); err != nil || m.String() != s {
			t.Errorf("Set(%q) = %v, mode %q", s, err, m)
		}
	}
	for _, s := range []string{"", "quic", "Direct", "portforward"} {
		m := transportFlag(attach.TransportDirect)
		err := m.Set(s)
		if err == nil || err.Error() != `--transport must be auto, direct or port-forward, not "`+s+`"` || m != transportFlag(attach.TransportDirect) {
			t.Errorf("Set(%q) = %v, mode %q; want a refusal that keeps direct", s, err, m)
		}
	}
}

// The configuration file sets --transport as the command line does, through the same Set.
func TestTransportModeFromTheFile(t *testing.T) {
	o, _ := parsedExec(t, "transport: port-forward\n")
	if o.Transport != attach.TransportPortForward {
		t.Errorf("transport %q from the file, want port-forward", o.Transport)
	}
	o, _ = parsedExec(t, "transport: port-forward\n", "--transport", "direct")
	if o.Transport != attach.TransportDirect {
		t.Errorf("transport %q, want the command line's direct", o.Transport)
	}
}

// The configuration file's "transport" key lists the values for editors (its schema) and for
// its own errors, which name the line: the list is Set's.
func TestTransportModeAndTheFileAgree(t *testing.T) {
	var want []string
	for _, m := range attach.Transports() {
		want = append(want, string(m))
	}
	for _, k := range configfile.Keys() {
		if k.Name == "transport" {
			if !slices.Equal(k.Enum, want) {
				t.Errorf("the file's transport takes %q, --transport %q", k.Enum, want)
			}
			return
		}
	}
	t.Fatal("no transport key in the configuration file")
}

// Every command that takes --transport refuses a bad value while it reads the command line, in
// the same line, before it talks to the cluster.
func TestTransportModeOnEveryCommand(t *testing.T) {
	for _, cmd := range []string{"exec", "port-forward", "clean", "ls", "doctor"} {
		_, _, err := execute(t, "--kubeconfig", "/dev/null", "--server", "https://198.18.255.254:1", cmd, "pod/web", "--transport", "quic")
		want := `--transport must be auto, direct or port-forward, not "quic" (see 'kubectl remocal ` + cmd + ` --help')`
		if err == nil || err.Error() != want {
			t.Errorf("%s --transport quic = %v, want %q", cmd, err, want)
		}
	}
	stdout, _, err := execute(t, "exec", "--help")
	if err != nil || !strings.Contains(stdout, "--transport string") {
		t.Errorf("exec --help does not show --transport as a string:\n%s", stdout)
	}
}
