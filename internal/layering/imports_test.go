package layering

import (
	"slices"
	"strings"
	"testing"
)

const module = "github.com/remocal/kubectl-remocal"

// mayImport is the module's whole allowed-imports matrix: for each top-level directory, the
// top-level directories its packages may import. The three binaries stand on it: the sidecar
// (sidecar/ on pkg/) knows nothing of the layer, the layer knows nothing of the wire protocol
// or the sidecar (it gets a Dial from the plugin), pkg/ serves both ends and knows neither,
// and internal/ is private plumbing below all of them. The matrix is closed under imports
// (what a directory may import may import only what the directory may), so checking direct
// imports checks the transitive ones too.
//
// It binds the packages' own code, not their tests: a test may reach further (a client tested
// against the real server in process, e2e driving every piece); a binary never links a test.
var mayImport = map[string][]string{
	"cmd":      {"cmd", "plugin", "sidecar", "layer", "pkg", "internal"},
	"plugin":   {"plugin", "layer", "pkg", "internal"},
	"sidecar":  {"sidecar", "pkg", "internal"},
	"layer":    {"layer", "internal"},
	"pkg":      {"pkg", "internal"},
	"internal": {"internal"},
	"test":     {"test", "plugin", "sidecar", "layer", "pkg", "internal"},
}

// topDir is the module's top-level directory that holds importPath, or "" for a package
// outside the module.
func topDir(importPath string) string {
	rest, ok := strings.CutPrefix(importPath, module+"/")
	if !ok {
		return ""
	}
	dir, _, _ := strings.Cut(rest, "/")
	return dir
}

// layerViolation says why from may not import imp, or "" if it may.
func layerViolation(from, imp string) string {
	fromDir, impDir := topDir(from), topDir(imp)
	if impDir == "" {
		return "" // outside the module: TestLightPackagesAvoidKubernetesAndCobra's concern
	}
	allowed, ok := mayImport[fromDir]
	if !ok {
		return fromDir + "/ is not in the allowed-imports matrix (mayImport): add it"
	}
	if !slices.Contains(allowed, impDir) {
		return fromDir + "/ may import only " + strings.Join(allowed, "/, ") + "/"
	}
	return ""
}

func TestImportsFollowTheLayers(t *testing.T) {
	// Imports differ per platform: the plugin is also built for macOS, with other files.
	platforms := [][]string{
		{"GOOS=linux", "GOARCH=amd64"},
		{"GOOS=darwin", "GOARCH=arm64"},
	}
	for _, env := range platforms {
		t.Run(strings.Join(env, ","), func(t *testing.T) {
			// -e lists packages that fail to load (work in progress elsewhere) instead of aborting.
			pkgs := goList(t, env, "-e", "./...")
			seen := map[string]bool{}
			for _, p := range pkgs {
				seen[topDir(p.ImportPath)] = true
				for _, imp := range p.Imports {
					if why := layerViolation(p.ImportPath, imp); why != "" {
						t.Errorf("%s imports %s: %s", p.ImportPath, imp, why)
					}
				}
			}
			// Guard against a listing that silently stops matching, which would make this test vacuous.
			for dir := range mayImport {
				if !seen[dir] {
					t.Errorf("go list ./... found no package under %s/", dir)
				}
			}
		})
	}
}

func TestLayerViolation(t *testing.T) {
	tests := []struct {
		from, imp string
		allowed   bool
	}{
		{"layer", "layer/internal/seccomp", true},
		{"layer", "internal/testnet", true},
		{"layer", "pkg/wire", false},
		{"layer", "sidecar", false},
		{"layer", "plugin", false},
		{"pkg/remotefs", "pkg/wire", true},
		{"pkg/wire", "plugin", false},
		{"pkg/wire", "sidecar", false},
		{"pkg/remotefs", "layer", false},
		{"sidecar", "pkg/wire", true},
		{"sidecar", "sidecar/redirect", true},
		{"sidecar", "layer", false},
		{"sidecar", "plugin", false},
		{"plugin", "layer", true},
		{"plugin", "sidecar", false},
		{"internal/environ", "pkg/wire", false},
		{"cmd/remocal-sidecar", "sidecar", true},
		{"nowhere", "pkg/wire", false},
	}
	for _, tt := range tests {
		from, imp := module+"/"+tt.from, module+"/"+tt.imp
		if got := layerViolation(from, imp) == ""; got != tt.allowed {
			t.Errorf("%s importing %s allowed = %v, want %v", tt.from, tt.imp, got, tt.allowed)
		}
	}
	if why := layerViolation(module+"/layer", "golang.org/x/sys/unix"); why != "" {
		t.Errorf("an import from outside the module: %s", why)
	}
}
