package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A .remocal.yaml in the working directory: a mistyped key fails at once with its file and
// line and the valid keys, and a correct file alone, with no flag and no TARGET, runs a session.
func TestConfigFile(t *testing.T) {
	env := newEnv(t)
	echo := env.deployEcho(t)
	p := env.plugin(t)
	p.dir = t.TempDir()
	p.bare = true
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(p.dir, ".remocal.yaml"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("a typo in a key", func(t *testing.T) {
		write("target: deployment/echo\nnamespace: " + env.namespace + "\n\n# take the pod's traffic\nstael: true\n")
		r := p.run(t, "exec", "--", "true")
		assertOneLineError(t, r, `.remocal.yaml:5: unknown key "stael" (did you mean "steal"?); valid keys: container, context, env,`)
		if !strings.Contains(r.stderr, ", steal, target, transport, ttl") {
			t.Errorf("the error does not list the valid keys:\n%s", r.stderr)
		}
		if n := env.ephemeralContainers(t, echo.pod); n != 0 {
			t.Errorf("the pod has %d ephemeral containers: the mistake was found after reaching the cluster", n)
		}
	})

	t.Run("the file alone", func(t *testing.T) {
		write("target: deployment/echo\nnamespace: " + env.namespace + "\ncontainer: http\nenv:\n  FROM_THE_FILE: yes it is\n")
		r := p.run(t, "exec", "--", "env")
		if r.code != 0 {
			t.Fatalf("exit %d", r.code)
		}
		for _, want := range []string{"ECHO_FROM_SECRET=s3cret\n", "FROM_THE_FILE=yes it is\n"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("the environment lacks %q:\n%s", want, r.stdout)
			}
		}
		if !strings.Contains(r.stderr, "remocal: settings from .remocal.yaml\n") {
			t.Errorf("stderr does not say where the settings came from:\n%s", r.stderr)
		}
	})

	t.Run("doctor checks the file's target", func(t *testing.T) {
		write("target: deployment/echo\nnamespace: " + env.namespace + "\ncontainer: tcp\nenv:\n  ONLY_FOR_EXEC: x\n")
		r := p.run(t, "doctor")
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stdout)
		}
		if !strings.Contains(r.stdout, "deployment/echo: pod "+echo.pod+", container tcp") {
			t.Errorf("doctor did not check the file's target and container:\n%s", r.stdout)
		}
	})
}
