package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/remocal/kubectl-remocal/internal/ociimage"
)

// load imports image tarballs into the node's containerd, where the kubelet finds them
// (pods use imagePullPolicy Never or IfNotPresent: there is no registry to pull from).
func (h *harness) load(ctx context.Context, tarballs []string) error {
	if _, ok := daemonRunning(h.layout, "containerd"); !ok {
		return fmt.Errorf("the cluster is not running (make cluster-up starts it)")
	}
	for _, tb := range tarballs {
		if err := h.step("import "+tb, func() error { return h.importImage(ctx, tb) }); err != nil {
			return err
		}
	}
	return nil
}

func (h *harness) importImage(ctx context.Context, tarball string) error {
	if _, err := os.Stat(tarball); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "ctr", "--address", h.layout.containerdSocket(), "--namespace", "k8s.io",
		"images", "import", "--platform", "linux/"+goruntime.GOARCH, tarball)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr images import %s: %w: %s", tarball, err, strings.TrimSpace(string(out)))
	}
	fmt.Fprint(h.progress, indent(string(out)))
	return nil
}

// importPause builds the pod sandbox image from test/images/pause and imports it. It is built
// from the checkout the harness runs in; the program is tiny and changes never.
func (h *harness) importPause(ctx context.Context) error {
	dir := h.layout.imagesDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	bin := filepath.Join(dir, "pause")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./test/images/pause")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goruntime.GOARCH)
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build pause: %w: %s", err, out)
	}
	img, err := ociimage.Build(ociimage.Spec{
		Platform:   v1.Platform{OS: "linux", Architecture: goruntime.GOARCH},
		Files:      []ociimage.File{{Path: "/pause", Source: bin, Mode: 0o755}},
		Entrypoint: []string{"/pause"},
	})
	if err != nil {
		return err
	}
	tarball := filepath.Join(dir, "pause.tar")
	if err := ociimage.WriteTarball(tarball, pauseImage, img); err != nil {
		return err
	}
	return h.importImage(ctx, tarball)
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ") + "\n"
}
