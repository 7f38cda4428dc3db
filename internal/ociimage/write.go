package ociimage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations on the index.json descriptor of a layout. containerd's import
// names the image from io.containerd.image.name when present and otherwise
// combines the ref.name tag with a base name given on its command line.
const (
	annotationRefName        = "org.opencontainers.image.ref.name"
	annotationContainerdName = "io.containerd.image.name"
)

// WriteTarball writes img to path as a docker-archive tarball tagged ref,
// the format `ctr -n k8s.io images import` and `docker load` accept. The file
// is written next to path and renamed into place so that a concurrent import
// never reads a half-written archive.
func WriteTarball(path, ref string, img v1.Image) (err error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("write tarball %s: parse image reference: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write tarball %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := tarball.Write(tag, img, f); err != nil {
		return fmt.Errorf("write tarball %s: %w", path, err)
	}
	// CreateTemp makes the file 0600; the archive is not secret and is often
	// imported by root from a file a user built.
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("write tarball %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write tarball %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write tarball %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write tarball %s: %w", path, err)
	}
	return nil
}

// WriteLayout writes idx as an OCI image layout in dir, replacing what dir
// held. index.json has one entry, the image index, annotated with the tag of
// ref. The layout is assembled in a sibling directory and swapped in, so a
// failed build leaves the previous layout intact.
//
// To avoid deleting something precious after a typo, dir is only replaced
// when it is missing, empty or already an OCI layout.
func WriteLayout(dir, ref string, idx v1.ImageIndex) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("write layout %s: parse image reference: %w", dir, err)
	}
	// Absolute, so that "." gets a real parent to build the new layout in.
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("write layout %s: %w", dir, err)
	}
	dir = abs
	if filepath.Dir(dir) == dir {
		return fmt.Errorf("write layout %s: refusing to replace the root directory", dir)
	}
	if err := checkReplaceable(dir); err != nil {
		return fmt.Errorf("write layout %s: %w", dir, err)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("write layout %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write layout %s: %w", dir, err)
	}
	// After a successful rename tmp no longer exists and this is a no-op.
	defer os.RemoveAll(tmp)

	top := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), mutate.IndexAddendum{
		Add: idx,
		Descriptor: v1.Descriptor{Annotations: map[string]string{
			annotationRefName:        tag.TagStr(),
			annotationContainerdName: containerdName(tag),
		}},
	})
	if _, err := layout.Write(tmp, top); err != nil {
		return fmt.Errorf("write layout %s: %w", dir, err)
	}
	if err := normalizeModes(tmp); err != nil {
		return fmt.Errorf("write layout %s: %w", dir, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("write layout %s: remove previous layout: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("write layout %s: %w", dir, err)
	}
	return nil
}

// normalizeModes makes every directory under root 0755 and every file 0644.
// go-containerregistry leaves blobs 0600 and index.json 0755 (subject to the
// umask), so a layout built by one user could not be read by another.
func normalizeModes(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	})
}

// checkReplaceable returns an error unless dir is missing, an empty
// directory or an OCI layout (it has an oci-layout file).
func checkReplaceable(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case len(entries) == 0:
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return fmt.Errorf("refusing to replace a non-empty directory that is not an OCI layout (no oci-layout file); remove it or choose another path")
	}
	return nil
}

// containerdName is the fully qualified name containerd and the kubelet use
// for tag: go-containerregistry spells Docker Hub "index.docker.io", they
// spell it "docker.io".
func containerdName(tag name.Tag) string {
	reg := tag.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + tag.Context().RepositoryStr() + ":" + tag.TagStr()
}
