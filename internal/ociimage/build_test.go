package ociimage

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// writeFile creates a host file for a test image and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func testSpec(t *testing.T) Spec {
	t.Helper()
	return Spec{
		Platform: v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"},
		Files: []File{
			{Path: "/usr/bin/app", Source: writeFile(t, "app", "#!binary"), Mode: 0o755},
			{Path: "/etc/app.conf", Source: writeFile(t, "conf", "k=v\n")},
		},
		Entrypoint: []string{"/usr/bin/app"},
		Cmd:        []string{"serve"},
		Env:        []string{"A=1"},
		Labels:     map[string]string{"org.opencontainers.image.title": "app"},
	}
}

type tarEntry struct {
	name    string
	typ     byte
	mode    int64
	content string
}

// layerEntries returns the entries of img's only layer.
func layerEntries(t *testing.T, img v1.Image) []tarEntry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("got %d layers, want 1", len(layers))
	}
	mt, err := layers[0].MediaType()
	if err != nil {
		t.Fatal(err)
	}
	if mt != types.OCILayer {
		t.Errorf("layer media type = %s, want %s", mt, types.OCILayer)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got []tarEntry
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Uid != 0 || hdr.Gid != 0 || hdr.ModTime.Unix() != 0 {
			t.Errorf("%s: uid %d gid %d mtime %v, want 0 0 epoch", hdr.Name, hdr.Uid, hdr.Gid, hdr.ModTime)
		}
		got = append(got, tarEntry{name: hdr.Name, typ: hdr.Typeflag, mode: hdr.Mode, content: string(b)})
	}
	return got
}

func TestBuildLayer(t *testing.T) {
	img, err := Build(testSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []tarEntry{
		{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/app.conf", typ: tar.TypeReg, mode: 0o644, content: "k=v\n"},
		{name: "usr/", typ: tar.TypeDir, mode: 0o755},
		{name: "usr/bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "usr/bin/app", typ: tar.TypeReg, mode: 0o755, content: "#!binary"},
	}
	if got := layerEntries(t, img); !slices.Equal(got, want) {
		t.Errorf("layer entries:\n got %+v\nwant %+v", got, want)
	}
}

func TestBuildConfig(t *testing.T) {
	img, err := Build(testSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "arm64" || cf.Variant != "v8" {
		t.Errorf("platform = %s/%s/%s, want linux/arm64/v8", cf.OS, cf.Architecture, cf.Variant)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/usr/bin/app"}) || !slices.Equal(cf.Config.Cmd, []string{"serve"}) {
		t.Errorf("entrypoint %q cmd %q", cf.Config.Entrypoint, cf.Config.Cmd)
	}
	if !slices.Equal(cf.Config.Env, []string{"A=1"}) || cf.Config.Labels["org.opencontainers.image.title"] != "app" {
		t.Errorf("env %q labels %v", cf.Config.Env, cf.Config.Labels)
	}
	if cf.RootFS.Type != "layers" || len(cf.RootFS.DiffIDs) != 1 {
		t.Errorf("rootfs = %+v, want one layer", cf.RootFS)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("media types: manifest %s config %s, want OCI", m.MediaType, m.Config.MediaType)
	}
}

func TestBuildDeterministic(t *testing.T) {
	spec := testSpec(t)
	digest := func(s Spec) v1.Hash {
		t.Helper()
		img, err := Build(s)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	first := digest(spec)
	if second := digest(spec); first != second {
		t.Errorf("same spec built twice: %s != %s", first, second)
	}
	// The order of Files must not matter either.
	reversed := spec
	reversed.Files = slices.Clone(spec.Files)
	slices.Reverse(reversed.Files)
	if d := digest(reversed); d != first {
		t.Errorf("reordered files: %s != %s", d, first)
	}
	// A touched but unchanged source must not change the image.
	if err := os.Chtimes(spec.Files[0].Source, time.Unix(1e9, 0), time.Unix(1e9, 0)); err != nil {
		t.Fatal(err)
	}
	if d := digest(spec); d != first {
		t.Errorf("touched source: %s != %s", d, first)
	}
	changed := testSpec(t)
	changed.Cmd = []string{"other"}
	if d := digest(changed); d == first {
		t.Errorf("different cmd gave the same digest %s", d)
	}
}

func TestBuildErrors(t *testing.T) {
	src := writeFile(t, "f", "x")
	linux := v1.Platform{OS: "linux", Architecture: "amd64"}
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{"no arch", Spec{Platform: v1.Platform{OS: "linux"}}, "needs both OS and architecture"},
		{"relative path", Spec{Platform: linux, Files: []File{{Path: "app", Source: src}}}, "must be absolute"},
		{"unclean path", Spec{Platform: linux, Files: []File{{Path: "/a/../app", Source: src}}}, "must be absolute"},
		{"root", Spec{Platform: linux, Files: []File{{Path: "/", Source: src}}}, "not /"},
		{"duplicate", Spec{Platform: linux, Files: []File{{Path: "/a", Source: src}, {Path: "/a", Source: src}}}, "listed twice"},
		{"file under file", Spec{Platform: linux, Files: []File{{Path: "/a", Source: src}, {Path: "/a/b", Source: src}}}, "also a file"},
		{"file then its dir", Spec{Platform: linux, Files: []File{{Path: "/a/b", Source: src}, {Path: "/a", Source: src}}}, "parent directory"},
		{"bad mode", Spec{Platform: linux, Files: []File{{Path: "/a", Source: src, Mode: 0o10000}}}, "not a permission mode"},
		{"missing source", Spec{Platform: linux, Files: []File{{Path: "/a", Source: filepath.Join(t.TempDir(), "nope")}}}, "no such file"},
		{"directory source", Spec{Platform: linux, Files: []File{{Path: "/a", Source: t.TempDir()}}}, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build() error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
