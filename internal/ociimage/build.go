// Package ociimage builds minimal container images from static binaries
// without a Docker engine or a registry: one layer holding the given files,
// a config carrying the platform and entrypoint, OCI media types. The result
// is written either as a docker-archive tarball for `ctr images import` or as
// an OCI image layout.
//
// Builds are reproducible: the same inputs always give the same digest, so a
// rebuilt but unchanged binary does not force a re-import or a pod restart.
package ociimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// File is one file placed in the image's single layer.
type File struct {
	Path   string // absolute path inside the image, e.g. "/remocal-sidecar"
	Source string // path on the host to read
	Mode   int64  // permission bits, e.g. 0o755; zero means 0o644
}

// Spec describes an image to build.
type Spec struct {
	Platform   v1.Platform // OS "linux", Architecture "amd64"/"arm64" (Variant "v8" for arm64 optional)
	Files      []File
	Entrypoint []string
	Cmd        []string
	Env        []string
	Labels     map[string]string
}

// epoch is the timestamp of every tar entry, history entry and the config's
// created field; a wall-clock time would change the digest on every build.
var epoch = time.Unix(0, 0).UTC()

// dirMode is the mode of the parent directories created for Files.
const dirMode = 0o755

// Build returns a single-layer image for spec.Platform built on an empty
// base. The layer is assembled in memory so that every read of it (digest,
// diff ID, compression, export) sees the same bytes even if a source file is
// rewritten while the image is in use.
func Build(spec Spec) (v1.Image, error) {
	if spec.Platform.OS == "" || spec.Platform.Architecture == "" {
		return nil, fmt.Errorf("build image: platform %q needs both OS and architecture", spec.Platform.String())
	}
	layerTar, err := layerTar(spec.Files)
	if err != nil {
		return nil, fmt.Errorf("build image for %s: %w", spec.Platform.String(), err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("build image for %s: create layer: %w", spec.Platform.String(), err)
	}

	cfg := &v1.ConfigFile{
		Created:      v1.Time{Time: epoch},
		OS:           spec.Platform.OS,
		Architecture: spec.Platform.Architecture,
		Variant:      spec.Platform.Variant,
		OSVersion:    spec.Platform.OSVersion,
		OSFeatures:   slices.Clone(spec.Platform.OSFeatures),
		Config: v1.Config{
			Entrypoint: slices.Clone(spec.Entrypoint),
			Cmd:        slices.Clone(spec.Cmd),
			Env:        slices.Clone(spec.Env),
			Labels:     maps.Clone(spec.Labels),
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, fmt.Errorf("build image for %s: set config: %w", spec.Platform.String(), err)
	}
	// empty.Image is a Docker schema 2 image; containerd and the OCI index
	// written by WriteLayout expect OCI media types throughout.
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "ociimage.Build"},
	})
	if err != nil {
		return nil, fmt.Errorf("build image for %s: append layer: %w", spec.Platform.String(), err)
	}
	return img, nil
}

// layerTar returns an uncompressed tar of files plus an entry for every
// parent directory, sorted by path so that directories precede their
// contents and the bytes do not depend on the order of files.
func layerTar(files []File) ([]byte, error) {
	type entry struct {
		hdr    *tar.Header
		source string
	}
	entries := map[string]entry{}
	for _, f := range files {
		name, err := archivePath(f.Path)
		if err != nil {
			return nil, err
		}
		if _, dup := entries[name]; dup {
			return nil, fmt.Errorf("file %s: listed twice or also a parent directory", f.Path)
		}
		if f.Mode < 0 || f.Mode > 0o7777 {
			return nil, fmt.Errorf("file %s: mode %#o is not a permission mode", f.Path, f.Mode)
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		fi, err := os.Stat(f.Source)
		if err != nil {
			return nil, fmt.Errorf("file %s: %w", f.Path, err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("file %s: source %s is not a regular file", f.Path, f.Source)
		}
		entries[name] = entry{hdr: fileHeader(name, mode, fi.Size()), source: f.Source}
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if e, ok := entries[dir]; ok {
				if e.hdr.Typeflag != tar.TypeDir {
					return nil, fmt.Errorf("file %s: parent /%s is also a file", f.Path, dir)
				}
				continue
			}
			entries[dir] = entry{hdr: dirHeader(dir)}
		}
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(entries)) {
		e := entries[name]
		if err := tw.WriteHeader(e.hdr); err != nil {
			return nil, fmt.Errorf("write tar header for /%s: %w", name, err)
		}
		if e.source == "" {
			continue
		}
		if err := copyFile(tw, e.source, e.hdr.Size); err != nil {
			return nil, fmt.Errorf("file /%s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("finish tar: %w", err)
	}
	return buf.Bytes(), nil
}

// copyFile copies exactly size bytes of source into w, failing if the file
// changed size since it was stat'ed, which would corrupt the tar stream.
func copyFile(w io.Writer, source string, size int64) error {
	f, err := os.Open(source)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, io.LimitReader(f, size))
	if err != nil {
		return fmt.Errorf("read %s: %w", source, err)
	}
	if n != size {
		return fmt.Errorf("read %s: file shrank from %d to %d bytes while building", source, size, n)
	}
	return nil
}

// archivePath turns an absolute image path into the relative form used in
// layer tars ("/usr/bin/x" -> "usr/bin/x").
func archivePath(p string) (string, error) {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return "", fmt.Errorf("file path %q must be absolute, clean and not /", p)
	}
	return strings.TrimPrefix(p, "/"), nil
}

func fileHeader(name string, mode, size int64) *tar.Header {
	return &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Mode:     mode,
		Size:     size,
		ModTime:  epoch,
	}
}

func dirHeader(name string) *tar.Header {
	return &tar.Header{
		Typeflag: tar.TypeDir,
		Name:     name + "/",
		Mode:     dirMode,
		ModTime:  epoch,
	}
}
