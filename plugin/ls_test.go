package plugin

import "testing"

func TestLsFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"ls", "-o", "xml"}, `--output must be 'json' or 'yaml', not "xml" (see 'kubectl remocal ls --help')`},
		{[]string{"ls", "-A", "pod/web"}, "a TARGET names one pod of one namespace: it does not go with --all-namespaces (see 'kubectl remocal ls --help')"},
		{[]string{"ls", "--transport", "carrier-pigeon"}, `--transport must be auto, direct or port-forward, not "carrier-pigeon" (see 'kubectl remocal ls --help')`},
	}
	for _, tt := range tests {
		_, _, err := execute(t, append([]string{"--kubeconfig", "/dev/null", "--server", "https://198.18.255.254:1"}, tt.args...)...)
		if err == nil || err.Error() != tt.want {
			t.Errorf("execute(%q) = %v, want %q", tt.args, err, tt.want)
		}
	}
}
