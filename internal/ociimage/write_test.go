package ociimage

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func TestWriteTarballRoundTrip(t *testing.T) {
	img := platformImage(t, v1.Platform{OS: "linux", Architecture: "amd64"})
	path := filepath.Join(t.TempDir(), "img.tar")
	const ref = "example.local/app:dev"
	if err := WriteTarball(path, ref, img); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(got); err != nil {
		t.Errorf("tarball image is invalid: %v", err)
	}
	// A docker-archive has no manifest: readers (containerd included)
	// synthesize a Docker schema 2 one, so the manifest digest differs by
	// design. The config digest, which is the image ID, and the layers
	// must survive unchanged.
	for _, part := range []struct {
		what string
		f    func(v1.Image) (v1.Hash, error)
	}{
		{"config digest", func(i v1.Image) (v1.Hash, error) { return i.ConfigName() }},
		{"layer digest", func(i v1.Image) (v1.Hash, error) { return onlyLayer(i, v1.Layer.Digest) }},
		{"layer diff ID", func(i v1.Image) (v1.Hash, error) { return onlyLayer(i, v1.Layer.DiffID) }},
	} {
		want, err := part.f(img)
		if err != nil {
			t.Fatal(err)
		}
		got, err := part.f(got)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s after round trip = %s, want %s", part.what, got, want)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("tarball mode = %v, want 0644", fi.Mode().Perm())
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*")); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

// onlyLayer applies f to the single layer of img.
func onlyLayer(img v1.Image, f func(v1.Layer) (v1.Hash, error)) (v1.Hash, error) {
	layers, err := img.Layers()
	if err != nil {
		return v1.Hash{}, err
	}
	if len(layers) != 1 {
		return v1.Hash{}, fmt.Errorf("got %d layers, want 1", len(layers))
	}
	return f(layers[0])
}

func TestWriteTarballBadRef(t *testing.T) {
	img := platformImage(t, v1.Platform{OS: "linux", Architecture: "amd64"})
	path := filepath.Join(t.TempDir(), "img.tar")
	if err := WriteTarball(path, "Not A Ref", img); err == nil {
		t.Error("WriteTarball with an invalid reference succeeded")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("tarball written despite the error: %v", err)
	}
}

func TestWriteLayoutRoundTrip(t *testing.T) {
	idx, err := Index(
		platformImage(t, v1.Platform{OS: "linux", Architecture: "amd64"}),
		platformImage(t, v1.Platform{OS: "linux", Architecture: "arm64"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	// A stale file proves the previous contents are replaced, not merged.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"oci-layout", "stale"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteLayout(dir, "example.local/app:dev", idx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "stale")); !os.IsNotExist(err) {
		t.Errorf("stale file survived: %v", err)
	}

	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o644)
		if d.IsDir() {
			want = 0o755
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	top, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.Manifests) != 1 {
		t.Fatalf("index.json has %d manifests, want 1", len(tm.Manifests))
	}
	desc := tm.Manifests[0]
	if got := desc.Annotations[annotationRefName]; got != "dev" {
		t.Errorf("%s = %q, want %q", annotationRefName, got, "dev")
	}
	if got := desc.Annotations[annotationContainerdName]; got != "example.local/app:dev" {
		t.Errorf("%s = %q, want %q", annotationContainerdName, got, "example.local/app:dev")
	}
	got, err := top.ImageIndex(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(got); err != nil {
		t.Errorf("layout index is invalid: %v", err)
	}
	wantDigest, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	gotDigest, err := got.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if gotDigest != wantDigest {
		t.Errorf("index digest after round trip = %s, want %s", gotDigest, wantDigest)
	}
}

func TestWriteLayoutRefusesForeignDir(t *testing.T) {
	idx, err := Index(platformImage(t, v1.Platform{OS: "linux", Architecture: "amd64"}))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	precious := filepath.Join(dir, "precious")
	if err := os.WriteFile(precious, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = WriteLayout(dir, "example.local/app:dev", idx)
	if err == nil || !strings.Contains(err.Error(), "not an OCI layout") {
		t.Errorf("WriteLayout() error = %v, want a refusal", err)
	}
	if _, err := os.Stat(precious); err != nil {
		t.Errorf("existing file removed: %v", err)
	}
}

func TestContainerdName(t *testing.T) {
	tests := []struct{ ref, want string }{
		{"example.local/app:dev", "example.local/app:dev"},
		{"localhost:5000/a/b", "localhost:5000/a/b:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36"},
		{"index.docker.io/me/app:v1", "docker.io/me/app:v1"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			tag, err := name.NewTag(tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			if got := containerdName(tag); got != tt.want {
				t.Errorf("containerdName(%q) = %q, want %q", tt.ref, got, tt.want)
			}
		})
	}
}
