package ociimage

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Index returns an OCI image index of imgs. Each manifest descriptor carries
// the platform read from its image's config, because that is what a runtime
// matches when it picks the image for its node.
func Index(imgs ...v1.Image) (v1.ImageIndex, error) {
	if len(imgs) == 0 {
		return nil, fmt.Errorf("build index: no images")
	}
	seen := make(map[string]int, len(imgs))
	adds := make([]mutate.IndexAddendum, 0, len(imgs))
	for i, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("build index: read config of image %d: %w", i, err)
		}
		p := cf.Platform()
		if p == nil || p.OS == "" || p.Architecture == "" {
			return nil, fmt.Errorf("build index: image %d has no OS and architecture in its config", i)
		}
		// Two manifests for one platform would make the runtime's choice
		// arbitrary.
		if j, dup := seen[p.String()]; dup {
			return nil, fmt.Errorf("build index: images %d and %d are both %s", j, i, p.String())
		}
		seen[p.String()] = i
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p}})
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...), nil
}
