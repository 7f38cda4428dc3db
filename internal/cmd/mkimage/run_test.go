package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// fakeBinary writes a stand-in for a static binary and returns its path.
func fakeBinary(t *testing.T, dir, content string) string {
	t.Helper()
	p := filepath.Join(dir, strings.ReplaceAll(content, "/", "-"))
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	amd := fakeBinary(t, dir, "linux/amd64")
	arm := fakeBinary(t, dir, "linux/arm64")
	layoutDir := filepath.Join(dir, "out", "layout")
	tarPath := filepath.Join(dir, "out.tar")
	const ref = "example.local/testapp:dev"

	var stderr bytes.Buffer
	err := run([]string{
		"-ref", ref,
		"-entrypoint", "/testapp",
		"-bin", "linux/amd64=" + amd,
		"-bin", "linux/arm64=" + arm,
		"-oci-layout", layoutDir,
		"-tarball", tarPath,
		"-tarball-platform", "linux/arm64",
	}, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	if lines := strings.Split(strings.TrimSpace(stderr.String()), "\n"); len(lines) != 2 {
		t.Errorf("want one line per artifact, got:\n%s", stderr.String())
	}

	t.Run("layout has both platforms", func(t *testing.T) {
		top, err := layout.ImageIndexFromPath(layoutDir)
		if err != nil {
			t.Fatal(err)
		}
		tm, err := top.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if len(tm.Manifests) != 1 {
			t.Fatalf("index.json has %d entries, want 1", len(tm.Manifests))
		}
		idx, err := top.ImageIndex(tm.Manifests[0].Digest)
		if err != nil {
			t.Fatal(err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"linux/amd64": "linux/amd64", "linux/arm64": "linux/arm64"}
		for _, desc := range im.Manifests {
			if desc.Platform == nil {
				t.Fatalf("manifest %s has no platform", desc.Digest)
			}
			p := desc.Platform.String()
			content, ok := want[p]
			if !ok {
				t.Errorf("unexpected or repeated platform %s", p)
				continue
			}
			delete(want, p)
			img, err := idx.Image(desc.Digest)
			if err != nil {
				t.Fatal(err)
			}
			if got := entrypointContent(t, img); got != content {
				t.Errorf("%s: /testapp holds %q, want %q", p, got, content)
			}
		}
		if len(want) != 0 {
			t.Errorf("platforms missing from the index: %v", want)
		}
	})

	t.Run("tarball has the chosen platform", func(t *testing.T) {
		tag, err := name.NewTag(ref)
		if err != nil {
			t.Fatal(err)
		}
		img, err := tarball.ImageFromPath(tarPath, &tag)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != "linux" || cf.Architecture != "arm64" {
			t.Errorf("tarball platform = %s/%s, want linux/arm64", cf.OS, cf.Architecture)
		}
		if len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/testapp" {
			t.Errorf("entrypoint = %q, want [/testapp]", cf.Config.Entrypoint)
		}
		if got := entrypointContent(t, img); got != "linux/arm64" {
			t.Errorf("/testapp holds %q, want the arm64 binary", got)
		}
	})
}

// entrypointContent returns the contents of /testapp in img.
func entrypointContent(t *testing.T, img v1.Image) string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("got %d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	return readTarFile(t, rc, "testapp")
}

func TestParseArgsErrors(t *testing.T) {
	dir := t.TempDir()
	amd := fakeBinary(t, dir, "amd64")
	base := []string{"-ref", "example.local/a:b", "-entrypoint", "/a", "-bin", "linux/amd64=" + amd}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no ref", []string{"-entrypoint", "/a", "-bin", "linux/amd64=" + amd, "-tarball", "x"}, "-ref is required"},
		{"bad ref", []string{"-ref", "Bad Ref", "-entrypoint", "/a", "-bin", "linux/amd64=" + amd, "-tarball", "x"}, "-ref"},
		{"no entrypoint", []string{"-ref", "example.local/a:b", "-bin", "linux/amd64=" + amd, "-tarball", "x"}, "-entrypoint is required"},
		{"relative entrypoint", []string{"-ref", "example.local/a:b", "-entrypoint", "a", "-bin", "linux/amd64=" + amd, "-tarball", "x"}, "absolute"},
		{"no bin", []string{"-ref", "example.local/a:b", "-entrypoint", "/a", "-tarball", "x"}, "at least one -bin"},
		{"bin without path", append(base, "-bin", "linux/arm64"), "OS/ARCH=HOSTPATH"},
		{"bin without arch", append(base, "-bin", "linux=x"), "OS/ARCH"},
		{"duplicate bin", append(base, "-bin", "linux/amd64=y", "-tarball", "x"), "given twice"},
		{"no output", base, "nothing to write"},
		{"tarball platform without bin", append(base, "-tarball", "x", "-tarball-platform", "linux/arm64"), "no -bin for -tarball-platform linux/arm64"},
		{"bad tarball platform", append(base, "-tarball", "x", "-tarball-platform", "linux"), "-tarball-platform"},
		{"extra args", append(base, "-tarball", "x", "extra"), "unexpected arguments"},
		{"unknown flag", append(base, "-nope"), "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseArgs(tt.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseArgs() error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParseArgsTarballPlatform(t *testing.T) {
	tests := []struct {
		name    string
		bins    []string
		flag    string
		wantBin int
	}{
		{"exact", []string{"linux/amd64=a", "linux/arm64=b"}, "linux/arm64", 1},
		{"variant given on bin only", []string{"linux/arm64/v8=b"}, "linux/arm64", 0},
		{"variant given on both", []string{"linux/arm/v6=a", "linux/arm/v7=b"}, "linux/arm/v7", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"-ref", "example.local/a:b", "-entrypoint", "/a", "-tarball", "x", "-tarball-platform", tt.flag}
			for _, b := range tt.bins {
				args = append(args, "-bin", b)
			}
			cfg, err := parseArgs(args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if i, ok := cfg.tarballBinary(cfg.tarballPlatform); !ok || i != tt.wantBin {
				t.Errorf("tarballBinary = %d, %v; want %d", i, ok, tt.wantBin)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var stderr bytes.Buffer
	if err := run([]string{"-h"}, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("run(-h) = %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(stderr.String(), "-tarball-platform") {
		t.Errorf("usage does not list the flags:\n%s", stderr.String())
	}
}
