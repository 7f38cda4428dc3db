// Package kubebuild builds the Kubernetes components and CoreDNS from the Go module proxy into a
// cache keyed by version, because no release binaries can be downloaded on these machines.
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
	src := filepath.Join(filepath.Dir(binDir), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", false, err
	}
	mod, err := b.kubernetesGoMod(ctx, version)
	if err != nil {
		return "", false, err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), mod, 0o644); err != nil {
		return "", false, err
	}
	var pkgs []string
	for _, c := range KubeCommands {
		pkgs = append(pkgs, "k8s.io/kubernetes/cmd/"+c)
	}
	var getArgs []string
	for _, p := range pkgs {
		getArgs = append(getArgs, p+"@"+version)
	}
	if err := b.goCmd(ctx, src, append([]string{"get"}, getArgs...)...); err != nil {
		return "", false, fmt.Errorf("resolve kubernetes %s modules: %w", version, err)
	}
	major, minor, err := majorMinor(version)
	if err != nil {
		return "", false, err
	}
	// Without the version stamped, the node and `kubectl version` report v0.0.0-master.
	ldflags := strings.Join([]string{
		"-s", "-w",
		"-X", "k8s.io/component-base/version.gitVersion=" + version,
		"-X", "k8s.io/component-base/version.gitMajor=" + major,
		"-X", "k8s.io/component-base/version.gitMinor=" + minor,
	}, " ")
	if err := os.RemoveAll(binDir); err != nil {
		return "", false, err
	}
	args := append([]string{"build", "-o", binDir + "/", "-ldflags", ldflags}, pkgs...)
	if err := b.goCmd(ctx, src, args...); err != nil {
		return "", false, fmt.Errorf("build kubernetes %s: %w", version, err)
	}
	return binDir, false, markComplete(binDir)
}

// KubernetesBinDir is where the KubeCommands of version are (or will be) cached.
func (b Builder) KubernetesBinDir(version string) string {
	return filepath.Join(b.CacheDir, "kubernetes", version, "bin")
}

// CoreDNS returns the path of the coredns binary of version, building it first when needed.
func (b Builder) CoreDNS(ctx context.Context, version string) (bin string, cached bool, err error) {
	binDir := filepath.Join(b.CacheDir, "coredns", version, "bin")
	bin = filepath.Join(binDir, "coredns")
	if isComplete(binDir, []string{"coredns"}) {
		return bin, true, nil
	}
	if err := os.RemoveAll(binDir); err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", false, err
	}
	cmd := b.command(ctx, os.TempDir(), "install", "-ldflags=-s -w", "github.com/coredns/coredns@"+version)
	cmd.Env = append(cmd.Env, "GOBIN="+binDir)
	if err := cmd.Run(); err != nil {
		return "", false, fmt.Errorf("build coredns %s: %w", version, err)
	}
	return bin, false, markComplete(binDir)
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
