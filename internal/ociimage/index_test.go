package ociimage

import (
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// platformImage builds a one-file image for p.
func platformImage(t *testing.T, p v1.Platform) v1.Image {
	t.Helper()
	img, err := Build(Spec{
		Platform:   p,
		Files:      []File{{Path: "/app", Source: writeFile(t, "app", p.String()), Mode: 0o755}},
		Entrypoint: []string{"/app"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestIndexPlatforms(t *testing.T) {
	amd := v1.Platform{OS: "linux", Architecture: "amd64"}
	arm := v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	imgs := []v1.Image{platformImage(t, amd), platformImage(t, arm)}
	idx, err := Index(imgs...)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex {
		t.Errorf("index media type = %s, want %s", im.MediaType, types.OCIImageIndex)
	}
	want := []v1.Platform{amd, arm}
	if len(im.Manifests) != len(want) {
		t.Fatalf("got %d manifests, want %d", len(im.Manifests), len(want))
	}
	for i, desc := range im.Manifests {
		if desc.Platform == nil || !desc.Platform.Equals(want[i]) {
			t.Errorf("manifest %d platform = %v, want %v", i, desc.Platform, want[i])
		}
		if desc.MediaType != types.OCIManifestSchema1 {
			t.Errorf("manifest %d media type = %s", i, desc.MediaType)
		}
		d, err := imgs[i].Digest()
		if err != nil {
			t.Fatal(err)
		}
		if desc.Digest != d {
			t.Errorf("manifest %d digest = %s, want %s", i, desc.Digest, d)
		}
	}
}

func TestIndexErrors(t *testing.T) {
	amd := v1.Platform{OS: "linux", Architecture: "amd64"}
	tests := []struct {
		name string
		imgs []v1.Image
		want string
	}{
		{"none", nil, "no images"},
		{"duplicate platform", []v1.Image{platformImage(t, amd), platformImage(t, amd)}, "both linux/amd64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Index(tt.imgs...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Index() error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
