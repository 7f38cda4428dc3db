package plugin

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/remocal/kubectl-remocal/plugin/internal/configfile"
)

// The keys a discovered file needs trust for: a new key that chooses where to connect, what
// runs, what is written or where a file goes must be added here and tagged, by decision.
func TestConfigKeysThatNeedTrust(t *testing.T) {
	want := []string{"context", "sidecar-image", "env-file", "fs-mode", "port-forward.local", "port-forward.remote"}
	if got := trustedKeys("", configfile.Keys()); !slices.Equal(got, want) {
		t.Errorf("keys that need trust = %q, want %q", got, want)
	}
}

func TestNeedsTrust(t *testing.T) {
	tests := []struct {
		name string
		file string
		args []string // exec's command line
		want []string // the keys that need trust, in order
	}{
		{name: "safe keys", file: "target: pod/web\nnamespace: shop\ntransport: direct\nsteal: true\nenv:\n  LD_X: y\nfs-mode: read\n"},
		{name: "fs-mode local", file: "fs-mode: local\n"},
		{name: "fs-mode write", file: "fs-mode: write\n", want: []string{"fs-mode"}},
		{name: "env-file", file: "env-file: /home/u/.bashrc\n", want: []string{"env-file"}},
		{name: "context and image", file: "context: prod\nsidecar-image: evil/img:1\n", want: []string{"context", "sidecar-image"}},
		// What the command line replaces is not taken from the file: nothing to trust.
		{name: "overridden on the command line", file: "env-file: /home/u/.bashrc\nfs-mode: write\n", args: []string{"--env-file", "x.env", "--fs-mode", "read"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, cmd := parsedExec(t, "")
			if err := cmd.ParseFlags(tt.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := configfile.Decode("f.yaml", []byte(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range configfile.Plan(cfg, "f.yaml", cmd) {
				if needsTrust(a) {
					got = append(got, a.Path)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("need trust: %q, want %q", got, tt.want)
			}
		})
	}
}

func TestListensBeyondLoopback(t *testing.T) {
	for spec, want := range map[string]bool{
		"8080:orders:80":               false,
		"127.0.0.1:8080:orders:80":     false,
		"localhost:8080:orders:80/udp": false,
		"[::1]:8080:orders:80":         false,
		"0.0.0.0:8080:orders:80":       true,
		"[::]:8080:orders:80":          true,
		"198.18.0.1:8080:orders:80":    true,
		"my-laptop.lan:8080:orders:80": true,
		"not a rule":                   false, // the flag's own check refuses it
	} {
		if got := listensBeyondLoopback(spec); got != want {
			t.Errorf("listensBeyondLoopback(%q) = %v, want %v", spec, got, want)
		}
	}
}

func TestTrustStore(t *testing.T) {
	dir := t.TempDir()
	store := trustStore{path: filepath.Join(dir, "sub", trustStoreName)}
	file := filepath.Join(dir, ".remocal.yaml")
	state := func(data string) trustState {
		t.Helper()
		s, err := store.state(file, []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := state("a: 1\n"); s != untrusted {
		t.Fatalf("no store: state %v, want untrusted", s)
	}
	if _, _, err := store.trust(file, []byte("a: 1\n")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.trust(filepath.Join(dir, "other.yaml"), []byte("b: 2\n")); err != nil {
		t.Fatal(err)
	}
	if s := state("a: 1\n"); s != trusted {
		t.Errorf("trusted content: state %v", s)
	}
	if s := state("a: 2\n"); s != changed {
		t.Errorf("edited content: state %v, want changed", s)
	}
	// Trusting again replaces: the old content is no longer trusted.
	if _, _, err := store.trust(file, []byte("a: 2\n")); err != nil {
		t.Fatal(err)
	}
	if s := state("a: 1\n"); s != changed {
		t.Errorf("the content trusted before: state %v, want changed", s)
	}
	info, err := os.Stat(store.path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("store mode %v, want 0600", info.Mode().Perm())
	}
	b, _ := os.ReadFile(store.path)
	if lines := strings.Count(string(b), "\n"); lines != 2 {
		t.Errorf("store has %d lines, want one per file:\n%s", lines, b)
	}

	if err := os.WriteFile(store.path, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := store.state(file, nil); err == nil || !strings.Contains(err.Error(), trustStoreName+":1: ") {
		t.Errorf("a malformed store: %v, want its file and line", err)
	}
}

// A discovered .remocal.yaml that sets env-file is refused in one line, before anything is
// written or reached, until the user trusts it; editing it takes the trust back; --config and
// $REMOCAL_CONFIG need none.
func TestConfigTrustThroughTheCommand(t *testing.T) {
	kubeconfig, dir, reachedRun := commandBench(t)
	victim := filepath.Join(t.TempDir(), ".bashrc")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, configfile.FileName), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	exec := func(args ...string) error {
		t.Helper()
		args = append(append(append(kubeconfig, "exec"), args...), "--", "env")
		_, _, err := execute(t, args...)
		return err
	}
	wantRefused := func(err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("error %v, want one line containing %q", err, want)
		}
	}

	content := "target: pod/web\nenv-file: " + victim + "\n"
	write(content)
	wantRefused(exec(), ".remocal.yaml:2: env-file (chooses a file of this machine to write): taken only from a file you trust, and it was found in the working directory; read it, then run 'kubectl remocal config trust .remocal.yaml', or name it with --config")
	if _, err := os.Stat(victim); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the env file was touched: %v", err)
	}

	// Named, the same file is the user's choice.
	if err := exec("--config", configfile.FileName); !errors.Is(err, reachedRun) {
		t.Errorf("--config: %v, want it to reach Run", err)
	}
	t.Setenv(configfile.Env, configfile.FileName)
	if err := exec(); !errors.Is(err, reachedRun) {
		t.Errorf("$REMOCAL_CONFIG: %v, want it to reach Run", err)
	}
	t.Setenv(configfile.Env, "")

	stdout, _, err := execute(t, "config", "trust")
	if err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(dir, configfile.FileName)
	if want := "trusted " + abs + " (sha256 " + contentHash([]byte(content)) + "), which sets env-file; "; !strings.HasPrefix(stdout, want) {
		t.Errorf("config trust printed %q, want it to start with %q", stdout, want)
	}
	if err := exec(); !errors.Is(err, reachedRun) {
		t.Errorf("trusted: %v, want it to reach Run", err)
	}

	write(content + "fs-mode: write\n")
	wantRefused(exec(), ".remocal.yaml:2: env-file (chooses a file of this machine to write), fs-mode (write lets the command change the pod's files): taken only from a file you trust, and it changed since you trusted it")

	// Keys that need no trust leave an untrusted file working.
	write("target: pod/web\nfs-mode: local\n")
	if err := exec(); !errors.Is(err, reachedRun) {
		t.Errorf("no key that needs trust: %v, want it to reach Run", err)
	}

	_, _, err = execute(t, "config", "trust", "missing.yaml")
	if err == nil {
		t.Error("config trust of a missing file succeeded")
	}
}
