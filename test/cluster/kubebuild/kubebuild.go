// Package kubebuild builds the Kubernetes components, kubectl, CoreDNS and krew from the Go module
// proxy into a cache keyed by version, because no release binaries can be downloaded on these
// machines.
//
// Kubernetes is built in a throw-away module outside the project (its go.mod must never carry
// k8s.io/kubernetes): the module requires k8s.io/kubernetes and replaces each staging module
// (k8s.io/api, k8s.io/client-go, ...) with its published v0.X.Y, exactly as k8s.io/kubernetes'
// own go.mod replaces them with local directories.
package kubebuild

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DefaultKubernetesVersion is the Kubernetes the test cluster runs unless REMOCAL_KUBE_VERSION
// names another; the e2e tests build kubectl of the same version, which shares the module
// downloads and most of the compiled packages.
const DefaultKubernetesVersion = "v1.34.4"

// KubernetesVersion is the version of Kubernetes to build and run: REMOCAL_KUBE_VERSION (make
// KUBE_VERSION=v1.30.14 ...), else DefaultKubernetesVersion.
func KubernetesVersion() string {
	if v := os.Getenv("REMOCAL_KUBE_VERSION"); v != "" {
		return v
	}
	return DefaultKubernetesVersion
}

// DefaultCacheDir is where built binaries are cached unless REMOCAL_CLUSTER_CACHE names another
// directory (a cold build can be measured with an empty one): ~/.cache/remocal.
func DefaultCacheDir() string {
	if dir := os.Getenv("REMOCAL_CLUSTER_CACHE"); dir != "" {
		return dir
	}
	userCache, err := os.UserCacheDir()
	if err != nil {
		userCache = "/var/cache"
	}
	return filepath.Join(userCache, "remocal")
}

// KubeCommands are the components the test cluster runs.
var KubeCommands = []string{"kube-apiserver", "kubelet", "kube-controller-manager", "kube-scheduler", "kube-proxy"}

// completeStamp marks a bin directory whose build finished; a build killed half-way leaves none.
const completeStamp = ".complete"

// Builder builds into CacheDir and logs the go command's output to Log.
type Builder struct {
	CacheDir string
	Log      io.Writer
}

// Kubernetes returns the directory holding KubeCommands of version (e.g. "v1.34.4"), building
// them first when the cache does not have them. cached says whether it did.
func (b Builder) Kubernetes(ctx context.Context, version string) (binDir string, cached bool, err error) {
	binDir = b.KubernetesBinDir(version)
	if isComplete(binDir, KubeCommands) {
		return binDir, true, nil
	}
	if err := os.RemoveAll(binDir); err != nil {
		return "", false, err
	}
	src := filepath.Join(filepath.Dir(binDir), "src")
	if err := b.buildKubernetes(ctx, version, src, binDir, KubeCommands); err != nil {
		return "", false, err
	}
	return binDir, false, markComplete(binDir)
}

// Kubectl returns the path of kubectl of version, building it first when the cache does not have
// it. It is cached apart from KubeCommands, in a directory of its own: adding it to them would
// make every existing cache incomplete, and rebuild all of Kubernetes under a cluster that runs
// from those binaries. It is built in a temporary directory and renamed into place, so two
// tests building it at once never see half a binary.
func (b Builder) Kubectl(ctx context.Context, version string) (bin string, cached bool, err error) {
	binDir := filepath.Join(b.CacheDir, "kubernetes", version, "kubectl")
	bin = filepath.Join(binDir, "kubectl")
	if isComplete(binDir, []string{"kubectl"}) {
		return bin, true, nil
	}
	if err := os.MkdirAll(filepath.Dir(binDir), 0o755); err != nil {
		return "", false, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(binDir), ".kubectl-build-")
	if err != nil {
		return "", false, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "bin")
	if err := b.buildKubernetes(ctx, version, filepath.Join(tmp, "src"), out, []string{"kubectl"}); err != nil {
		return "", false, err
	}
	if err := markComplete(out); err != nil {
		return "", false, err
	}
	// A directory left incomplete by an older, killed build is in the way of the rename.
	if !isComplete(binDir, []string{"kubectl"}) {
		if err := os.RemoveAll(binDir); err != nil {
			return "", false, err
		}
	}
	if err := os.Rename(out, binDir); err != nil && !isComplete(binDir, []string{"kubectl"}) {
		return "", false, fmt.Errorf("cache kubectl %s: %w", version, err)
	}
	return bin, false, nil
}

// buildKubernetes builds the commands (k8s.io/kubernetes/cmd/NAME) of version into outDir, in a
// throw-away module at src.
func (b Builder) buildKubernetes(ctx context.Context, version, src, outDir string, commands []string) error {
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	mod, err := b.kubernetesGoMod(ctx, version)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), mod, 0o644); err != nil {
		return err
	}
	var pkgs []string
	for _, c := range commands {
		pkgs = append(pkgs, "k8s.io/kubernetes/cmd/"+c)
	}
	var getArgs []string
	for _, p := range pkgs {
		getArgs = append(getArgs, p+"@"+version)
	}
	if err := b.goCmd(ctx, src, append([]string{"get"}, getArgs...)...); err != nil {
		return fmt.Errorf("resolve kubernetes %s modules: %w", version, err)
	}
	major, minor, err := majorMinor(version)
	if err != nil {
		return err
	}
	// Without the version stamped, the node and `kubectl version` report v0.0.0-master.
	ldflags := strings.Join([]string{
		"-s", "-w",
		"-X", "k8s.io/component-base/version.gitVersion=" + version,
		"-X", "k8s.io/component-base/version.gitMajor=" + major,
		"-X", "k8s.io/component-base/version.gitMinor=" + minor,
	}, " ")
	args := append([]string{"build", "-o", outDir + "/", "-ldflags", ldflags}, pkgs...)
	if err := b.goCmd(ctx, src, args...); err != nil {
		return fmt.Errorf("build kubernetes %s (%s): %w", version, strings.Join(commands, ", "), err)
	}
	return nil
}

// KubernetesBinDir is where the KubeCommands of version are (or will be) cached.
func (b Builder) KubernetesBinDir(version string) string {
	return filepath.Join(b.CacheDir, "kubernetes", version, "bin")
}

// CoreDNS returns the path of the coredns binary of version, building it first when needed.
func (b Builder) CoreDNS(ctx context.Context, version string) (bin string, cached bool, err error) {
	binDir := filepath.Join(b.CacheDir, "coredns", version, "bin")
	cached, err = b.goInstall(ctx, binDir, []string{"coredns"}, "github.com/coredns/coredns@"+version)
	if err != nil {
		return "", false, fmt.Errorf("build coredns %s: %w", version, err)
	}
	return filepath.Join(binDir, "coredns"), cached, nil
}

// Krew returns the directory holding krew and validate-krew-manifest (krew-index's own check of
// a plugin manifest) of version, building them first when needed.
func (b Builder) Krew(ctx context.Context, version string) (binDir string, cached bool, err error) {
	binDir = filepath.Join(b.CacheDir, "krew", version, "bin")
	cached, err = b.goInstall(ctx, binDir, []string{"krew", "validate-krew-manifest"},
		"sigs.k8s.io/krew/cmd/krew@"+version, "sigs.k8s.io/krew/cmd/validate-krew-manifest@"+version)
	if err != nil {
		return "", false, fmt.Errorf("build krew %s: %w", version, err)
	}
	return binDir, cached, nil
}

// goInstall installs pkgs (PATH@VERSION, one module) into binDir, which then holds bins, unless
// it already does.
func (b Builder) goInstall(ctx context.Context, binDir string, bins []string, pkgs ...string) (cached bool, err error) {
	if isComplete(binDir, bins) {
		return true, nil
	}
	if err := os.RemoveAll(binDir); err != nil {
		return false, err
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return false, err
	}
	cmd := b.command(ctx, os.TempDir(), append([]string{"install", "-ldflags=-s -w"}, pkgs...)...)
	cmd.Env = append(cmd.Env, "GOBIN="+binDir)
	if err := cmd.Run(); err != nil {
		return false, err
	}
	return false, markComplete(binDir)
}

// kubernetesGoMod writes the throw-away module's go.mod: the staging replacements are read from
// k8s.io/kubernetes' own go.mod as served by the module proxy, so a new version needs no edit here.
func (b Builder) kubernetesGoMod(ctx context.Context, version string) ([]byte, error) {
	var out bytes.Buffer
	cmd := b.command(ctx, os.TempDir(), "mod", "download", "-json", "k8s.io/kubernetes@"+version)
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("download k8s.io/kubernetes@%s: %w", version, err)
	}
	var info struct{ GoMod string }
	if err := json.Unmarshal(out.Bytes(), &info); err != nil || info.GoMod == "" {
		return nil, fmt.Errorf("download k8s.io/kubernetes@%s: no go.mod in %q", version, out.String())
	}
	upstream, err := os.ReadFile(info.GoMod)
	if err != nil {
		return nil, err
	}
	staging := stagingModules(upstream)
	if len(staging) == 0 {
		return nil, fmt.Errorf("k8s.io/kubernetes@%s: no staging replacements found in its go.mod", version)
	}
	stagingVersion := "v0" + strings.TrimPrefix(version, "v1") // v1.34.4 -> v0.34.4
	var mod bytes.Buffer
	fmt.Fprintf(&mod, "module remocal.local/kubernetes-build\n\ngo 1.24\n\nreplace (\n")
	for _, m := range staging {
		fmt.Fprintf(&mod, "\t%s => %s %s\n", m, m, stagingVersion)
	}
	fmt.Fprintf(&mod, ")\n")
	return mod.Bytes(), nil
}

// stagingModules lists the modules that k8s.io/kubernetes' go.mod replaces with ./staging/...
func stagingModules(gomod []byte) []string {
	var mods []string
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[1] == "=>" && strings.HasPrefix(f[2], "./staging/") {
			mods = append(mods, f[0])
		}
	}
	return mods
}

func majorMinor(version string) (string, string, error) {
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	if len(parts) < 2 {
		return "", "", fmt.Errorf("kubernetes version %q is not vMAJOR.MINOR.PATCH", version)
	}
	return parts[0], parts[1], nil
}

func (b Builder) goCmd(ctx context.Context, dir string, args ...string) error {
	return b.command(ctx, dir, args...).Run()
}

// command runs the go command outside any workspace, so the project's go.mod or a go.work
// around the cache never leaks into these builds.
func (b Builder) command(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	cmd.Stdout, cmd.Stderr = b.Log, b.Log
	return cmd
}

func isComplete(dir string, bins []string) bool {
	for _, name := range append([]string{completeStamp}, bins...) {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return false
		}
	}
	return true
}

func markComplete(dir string) error {
	return os.WriteFile(filepath.Join(dir, completeStamp), nil, 0o644)
}
