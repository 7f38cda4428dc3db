package plugin

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/cli-runtime/pkg/genericclioptions"
)

func TestClientKeyPerContext(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	config := `apiVersion: v1
kind: Config
clusters:
- {name: a, cluster: {server: "https://198.18.0.1:6443"}}
- {name: b, cluster: {server: "https://198.18.0.2:6443"}}
users:
- {name: u, user: {}}
contexts:
- {name: dev, context: {cluster: a, user: u}}
- {name: "arn:aws:eks:eu-west-1:1234:cluster/prod", context: {cluster: b, user: u}}
current-context: dev
`
	if err := os.WriteFile(kubeconfig, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", "")
	path := func(context string) string {
		t.Helper()
		flags := genericclioptions.NewConfigFlags(false)
		flags.KubeConfig = &kubeconfig
		if context != "" {
			flags.Context = &context
		}
		p, err := clientKeyPath("/cfg/remocal", flags)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		context, want string
	}{
		{"", "/cfg/remocal/keys/dev.pem"}, // the current context
		{"dev", "/cfg/remocal/keys/dev.pem"},
		{"arn:aws:eks:eu-west-1:1234:cluster/prod", "/cfg/remocal/keys/arn%3Aaws%3Aeks%3Aeu-west-1%3A1234%3Acluster%2Fprod.pem"},
	}
	for _, tt := range tests {
		if got := path(tt.context); got != tt.want {
			t.Errorf("context %q: key %s, want %s", tt.context, got, tt.want)
		}
	}
}

func TestFileNameOf(t *testing.T) {
	seen := map[string]string{}
	for _, s := range []string{"dev", "a/b", "a%2Fb", "..", ".hidden", "kind-dev.local", "x y", "ä"} {
		name := fileNameOf(s)
		if name == "" || name[0] == '.' || filepath.Base(name) != name {
			t.Errorf("fileNameOf(%q) = %q: not a plain file name", s, name)
		}
		if other, dup := seen[name]; dup {
			t.Errorf("%q and %q both become %q", s, other, name)
		}
		seen[name] = s
	}
	if got := fileNameOf("kind-dev.local"); got != "kind-dev.local" {
		t.Errorf("a plain name changed: %q", got)
	}
}
