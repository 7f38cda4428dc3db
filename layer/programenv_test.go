//go:build linux

package layer

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The program's environment reaches the program alone: `go run`'s toolchain, outside the
// layer, runs with the command's environment. A GOFLAGS it would choke on proves it.
func TestGoRunToolchainHasOnlyTheCommandsEnvironment(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the Go toolchain")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go on PATH")
	}
	module := t.TempDir()
	for name, content := range map[string]string{
		"go.mod":  "module printenv\n\ngo 1.22\n",
		"main.go": "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {\n\tfmt.Printf(\"GOFLAGS=%s APP=%s CGO_ENABLED=%s\\n\", os.Getenv(\"GOFLAGS\"), os.Getenv(\"APP\"), os.Getenv(\"CGO_ENABLED\"))\n}\n",
	} {
		if err := os.WriteFile(filepath.Join(module, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := newTestSupervisor(t, Config{})
	env := append(os.Environ(), "CGO_ENABLED=0")
	cmd, err := s.Command([]string{"go", "run", "."}, env, []string{"GOFLAGS=-no-such-flag", "APP=from-pod"})
	if err != nil {
		t.Fatal(err)
	}
	cmd.Dir = module
	var stderr strings.Builder
	cmd.Stderr = &stderr
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() {
		<-ctx.Done()
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
		}
	}()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go run: %v (the toolchain got the program's GOFLAGS?)\nstdout: %s\nstderr: %s", err, out, stderr.String())
	}
	if want := "GOFLAGS=-no-such-flag APP=from-pod CGO_ENABLED=0\n"; string(out) != want {
		t.Fatalf("the program printed %q, want %q", out, want)
	}
}
