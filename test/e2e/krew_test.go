package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/remocal/kubectl-remocal/test/cluster/kubebuild"
)

// krewVersion is the krew that installs the plugin. v0.4.4 is the newest release the Go module
// proxy serves (v0.4.5 is refused there).
const krewVersion = "v0.4.4"

// TestKrewInstallsThePlugin is `kubectl krew install remocal` end to end, for the host platform
// only: `make dist` narrowed to it with DIST_PLATFORMS packs the archive and renders the manifest
// from the same template and generator as a release, with its URI on a local release server.
// Cross-building the other four platforms would add minutes for no more coverage here: their
// archives differ only by the binary, and mkdist's unit tests check them all.
//
// It needs no cluster: `version --client` does not talk to one.
func TestKrewInstallsThePlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped under -short")
	}
	for _, tool := range []string{"make", "go", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("e2e: %s is not on PATH", tool)
		}
	}
	// A cold cache builds krew and kubectl from the module proxy: minutes, once per version.
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Minute)
	defer cancel()
	began := time.Now()

	var buildLog bytes.Buffer
	b := kubebuild.Builder{CacheDir: kubebuild.DefaultCacheDir(), Log: &buildLog}
	krewBin, krewCached, err := b.Krew(ctx, krewVersion)
	if err != nil {
		t.Fatalf("%v\n%s", err, buildLog.String())
	}
	kubectl, kubectlCached, err := b.Kubectl(ctx, kubebuild.KubernetesVersion())
	if err != nil {
		t.Fatalf("%v\n%s", err, buildLog.String())
	}
	t.Logf("krew %s (cached: %v) and kubectl %s (cached: %v) ready in %s", krewVersion, krewCached,
		kubebuild.KubernetesVersion(), kubectlCached, time.Since(began).Round(time.Millisecond))

	// The release server: krew downloads the archive from the manifest's URI and checks its sum,
	// as it would from GitHub.
	dist := t.TempDir()
	server := httptest.NewServer(http.FileServer(http.Dir(dist)))
	t.Cleanup(server.Close)
	manifest := filepath.Join(t.TempDir(), "remocal.yaml") // krew takes the plugin's name from it
	const version = "v0.0.0-krew-e2e"
	platform := runtime.GOOS + "/" + runtime.GOARCH
	step := time.Now()
	runTool(t, ctx, nil, "make", "-C", repoRoot(t), "--no-print-directory", "dist", "DIST_PLATFORMS="+platform,
		"DIST="+dist, "KREW_MANIFEST="+manifest, "RELEASE_URL="+server.URL+"/", "VERSION="+version)
	t.Logf("make dist for %s in %s", platform, time.Since(step).Round(time.Millisecond))

	step = time.Now()
	// krew-index's own check: the manifest's structure, that each platform selector matches a
	// platform krew supports, that no two overlap, and that each platform's archive installs
	// with `kubectl krew install` and holds a license file. The tools it runs are on a PATH of
	// their own.
	tools := t.TempDir()
	for link, target := range map[string]string{"kubectl": kubectl, "kubectl-krew": filepath.Join(krewBin, "krew")} {
		if err := os.Symlink(target, filepath.Join(tools, link)); err != nil {
			t.Fatal(err)
		}
	}
	runTool(t, ctx, []string{"PATH=" + tools, "KREW_ROOT=" + t.TempDir(), "KREW_NO_UPGRADE_CHECK=1", "HOME=" + t.TempDir()},
		filepath.Join(krewBin, "validate-krew-manifest"), "-manifest", manifest)

	// PATH holds krew's bin directory and nothing else, so kubectl can only find the plugin krew
	// installed (make e2e puts bin/kubectl-remocal on PATH too).
	krewRoot := t.TempDir()
	env := []string{
		"KREW_ROOT=" + krewRoot,
		"KREW_NO_UPGRADE_CHECK=1",
		"PATH=" + filepath.Join(krewRoot, "bin"),
		"HOME=" + t.TempDir(),
		"KUBECONFIG=" + filepath.Join(t.TempDir(), "none"),
	}
	// install validates the manifest (krew's ValidatePlugin), downloads, checks the sha256,
	// unpacks and links the bin.
	runTool(t, ctx, env, filepath.Join(krewBin, "krew"), "install", "--manifest="+manifest)

	out := runTool(t, ctx, env, kubectl, "remocal", "version", "--client", "-o", "json")
	var got struct {
		ClientVersion struct{ Version, Platform string }
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("kubectl remocal version --client -o json: %v\n%s", err, out)
	}
	if got.ClientVersion.Version != version || got.ClientVersion.Platform != platform {
		t.Fatalf("kubectl remocal version reports %+v, want %s on %s", got.ClientVersion, version, platform)
	}

	// The manifest's caveat for completion: copy the helper from the plugin's directory next to
	// its link; kubectl then completes the plugin's commands through it.
	link := filepath.Join(krewRoot, "bin", "kubectl-remocal")
	target, err := os.Readlink(link)
	if err != nil {
		t.Fatalf("krew did not link the plugin: %v", err)
	}
	helper, err := os.ReadFile(filepath.Join(filepath.Dir(target), "kubectl_complete-remocal"))
	if err != nil {
		t.Fatalf("the archive's completion helper: %v", err)
	}
	if err := os.WriteFile(filepath.Join(krewRoot, "bin", "kubectl_complete-remocal"), helper, 0o755); err != nil {
		t.Fatal(err)
	}
	completions := runTool(t, ctx, env, kubectl, "__complete", "remocal", "")
	for _, want := range []string{"exec", "port-forward", "version"} {
		if !strings.Contains(completions, want+"\t") && !strings.Contains(completions, want+"\n") {
			t.Errorf("kubectl __complete remocal '' lacks %s:\n%s", want, completions)
		}
	}
	t.Logf("validate, install, run through kubectl and complete in %s; %s in all",
		time.Since(step).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// runTool runs a command with env added to this process's environment (a variable given in env
// wins), fails the test with its output when it fails, and returns its stdout.
func runTool(t *testing.T, ctx context.Context, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// repoRoot is the repository's top directory: tests run in their package's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}
