package plugin

import (
	"fmt"
	"path/filepath"
	"strings"

	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// clientKeyPath is the client key for the cluster context the command uses, under dir: one key
// per context. A sidecar's pod spec shows its client's fingerprint to whoever may read pods, so
// a single key would tie one user's sidecars together across clusters, and a key that leaked
// from one machine or cluster setup would open sessions in all of them. The key of a context
// is made at its first session; the single key of earlier versions is no longer read (its
// sidecars end at their TTL).
func clientKeyPath(dir string, flags *genericclioptions.ConfigFlags) (string, error) {
	name := ""
	if flags.Context != nil {
		name = *flags.Context
	}
	if name == "" {
		raw, err := flags.ToRawKubeConfigLoader().RawConfig()
		if err != nil {
			return "", fmt.Errorf("read the kubeconfig: %w", err)
		}
		name = raw.CurrentContext
	}
	if name == "" {
		// No kubeconfig context (--server and credentials as flags, or in a pod): the server
		// stands for the cluster.
		rest, err := flags.ToRESTConfig()
		if err != nil {
			return "", err
		}
		name = "server " + rest.Host
	}
	return filepath.Join(dir, "keys", fileNameOf(name)+".pem"), nil
}

// fileNameOf spells s as a file name: letters, digits, '.', '_' and '-' stay, every other byte
// is %XX, so that each context has its own name ("arn:aws:eks:...:cluster/dev", "a/b" and
// "a%2Fb" included) and none climbs out of the directory.
func fileNameOf(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.' && i > 0, c == '_', c == '-':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
