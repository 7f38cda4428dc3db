package plugin

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// execute runs the command tree as kubectl would run the binary, and returns what it printed.
func execute(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	cmd := NewCmdRemocal(streams)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

func TestHelpReadsAsKubectlRemocal(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{
			name: "root",
			args: []string{"--help"},
			want: []string{"kubectl remocal [command]", "kubectl remocal version", `Use "kubectl remocal [command] --help"`},
		},
		{
			name: "no arguments",
			args: nil,
			want: []string{"kubectl remocal [command]"},
		},
		{
			name: "version",
			args: []string{"version", "--help"},
			want: []string{"kubectl remocal version [flags]", "kubectl remocal version --client", "--output"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := execute(t, tt.args...)
			if err != nil {
				t.Fatalf("execute(%q) = %v", tt.args, err)
			}
			if stderr != "" {
				t.Errorf("help wrote to stderr: %q", stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("help does not contain %q:\n%s", w, stdout)
				}
			}
		})
	}
}

func TestRootFlags(t *testing.T) {
	streams, _, _, _ := genericiooptions.NewTestIOStreams()
	flags := NewCmdRemocal(streams).PersistentFlags()

	// kubectl's connection flags, so that -n and --context mean what they mean to kubectl.
	for _, name := range []string{"kubeconfig", "context", "cluster", "namespace", "server", "request-timeout", "v"} {
		if flags.Lookup(name) == nil {
			t.Errorf("persistent flag --%s is missing", name)
		}
	}
	if f := flags.ShorthandLookup("n"); f == nil || f.Name != "namespace" {
		t.Errorf("-n is %v, want --namespace", f)
	}
	// Only -v of klog's flags is exposed.
	for _, name := range []string{"vmodule", "logtostderr", "log_file", "add_dir_header"} {
		if flags.Lookup(name) != nil {
			t.Errorf("klog flag --%s is exposed, want only -v", name)
		}
	}
}

func TestUsageErrorsAreOneLine(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "unknown flag", args: []string{"version", "--bogus"}, want: "unknown flag: --bogus (see 'kubectl remocal version --help')"},
		{name: "bad output", args: []string{"version", "--client", "-o", "xml"}, want: `--output must be 'json' or 'yaml', not "xml" (see 'kubectl remocal version --help')`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := execute(t, tt.args...)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("execute(%q) = %v, want %q", tt.args, err, tt.want)
			}
			// main prints the error; cobra must print neither it nor the usage.
			if stdout != "" || stderr != "" {
				t.Errorf("execute(%q) printed stdout %q, stderr %q; want nothing", tt.args, stdout, stderr)
			}
		})
	}
}

func TestExitErrorMatchesThroughWrapping(t *testing.T) {
	err := fmt.Errorf("run go: %w", ExitError{Code: 3})
	var exitErr ExitError
	if !errors.As(err, &exitErr) || exitErr.Code != 3 {
		t.Fatalf("errors.As(%v) = %v with code %d, want code 3", err, exitErr, exitErr.Code)
	}
}
