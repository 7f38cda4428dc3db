package layering

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// lightPackages must build into small binaries with honest layers (ARCHITECTURE.md, dependency
// rules): only plugin/ talks to the Kubernetes API.
var lightPackages = []string{"./pkg/...", "./sidecar/...", "./layer/...", "./cmd/remocal-sidecar"}

// banned reports whether a light package may not depend on importPath.
func banned(importPath string) bool {
	return strings.HasPrefix(importPath, "k8s.io/") ||
		importPath == "github.com/spf13/cobra" || strings.HasPrefix(importPath, "github.com/spf13/cobra/")
}

// listedPackage is the part of `go list -json` output these tests read.
type listedPackage struct {
	ImportPath   string
	Dir          string
	Imports      []string
	GoFiles      []string
	CgoFiles     []string
	TestGoFiles  []string
	XTestGoFiles []string
	DepOnly      bool
	Error        *struct{ Err string }
}

// goList runs `go list -json` at the module root with the given environment overrides.
func goList(t *testing.T, env []string, args ...string) []listedPackage {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go command not found: %v", err)
	}
	cmd := exec.CommandContext(t.Context(), goBin, append([]string{"list", "-json"}, args...)...)
	cmd.Dir = moduleRoot(t)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// moduleRoot is found from the test's directory, so the tests work from any working directory
// that `go test` chooses.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

func TestLightPackagesAvoidKubernetesAndCobra(t *testing.T) {
	// Dependencies differ per platform; the sidecar ships for linux, pkg/ is also built into the
	// plugin on macOS.
	platforms := [][]string{
		{"GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0"},
		{"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0"},
		{"GOOS=darwin", "GOARCH=arm64"},
	}
	for _, env := range platforms {
		t.Run(strings.Join(env[:2], ","), func(t *testing.T) {
			pkgs := goList(t, env, append([]string{"-deps"}, lightPackages...)...)
			// Guard against patterns that silently stop matching, which would make this test vacuous.
			const sidecarMain = "github.com/remocal/kubectl-remocal/cmd/remocal-sidecar"
			if !slices.ContainsFunc(pkgs, func(p listedPackage) bool { return p.ImportPath == sidecarMain && !p.DepOnly }) {
				t.Fatalf("go list -deps %s did not list %s", strings.Join(lightPackages, " "), sidecarMain)
			}
			// Every banned dependency is reached through an edge from an allowed package; naming
			// those edges says exactly which import to remove.
			for _, p := range pkgs {
				if banned(p.ImportPath) {
					continue
				}
				for _, imp := range p.Imports {
					if banned(imp) {
						t.Errorf("%s imports %s; pkg/, sidecar/ and layer/ must not depend on k8s.io or cobra", p.ImportPath, imp)
					}
				}
			}
		})
	}
}

func TestBannedMatchesOnlyKubernetesAndCobra(t *testing.T) {
	tests := []struct {
		importPath string
		want       bool
	}{
		{"k8s.io/client-go/rest", true},
		{"k8s.io/klog/v2", true},
		{"github.com/spf13/cobra", true},
		{"github.com/spf13/cobra/doc", true},
		{"github.com/spf13/cobra-cli", false},
		{"github.com/spf13/pflag", false},
		{"github.com/quic-go/quic-go", false},
		{"golang.org/x/sys/unix", false},
	}
	for _, tt := range tests {
		if got := banned(tt.importPath); got != tt.want {
			t.Errorf("banned(%q) = %v, want %v", tt.importPath, got, tt.want)
		}
	}
}

func TestEveryPackageHasDocComment(t *testing.T) {
	// -e lists packages that fail to load (work in progress elsewhere) instead of aborting.
	pkgs := goList(t, nil, "-e", "./...")
	if len(pkgs) == 0 {
		t.Fatal("go list ./... found no packages")
	}
	for _, p := range pkgs {
		// A test-only package documents itself in its test files.
		files := slices.Concat(p.GoFiles, p.CgoFiles)
		if len(files) == 0 {
			files = slices.Concat(p.TestGoFiles, p.XTestGoFiles)
		}
		if len(files) == 0 {
			continue // no Go files for this platform
		}
		documented := false
		for _, name := range files {
			f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(p.Dir, name), nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Errorf("parse %s: %v", filepath.Join(p.Dir, name), err)
				continue
			}
			if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
				documented = true
				break
			}
		}
		if !documented {
			t.Errorf("package %s has no package doc comment (add one to a file in %s, usually doc.go)", p.ImportPath, p.Dir)
		}
	}
}
