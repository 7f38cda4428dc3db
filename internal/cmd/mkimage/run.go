package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/remocal/kubectl-remocal/internal/ociimage"
)

// binary is one -bin flag: the host file that becomes the entrypoint of the
// image for platform.
type binary struct {
	platform v1.Platform
	source   string
}

// binFlag collects repeated -bin OS/ARCH[/VARIANT]=HOSTPATH flags.
type binFlag []binary

func (b *binFlag) String() string {
	parts := make([]string, 0, len(*b))
	for _, bin := range *b {
		parts = append(parts, bin.platform.String()+"="+bin.source)
	}
	return strings.Join(parts, ",")
}

func (b *binFlag) Set(s string) error {
	plat, source, ok := strings.Cut(s, "=")
	if !ok || source == "" {
		return fmt.Errorf("want OS/ARCH=HOSTPATH, got %q", s)
	}
	p, err := parsePlatform(plat)
	if err != nil {
		return err
	}
	*b = append(*b, binary{platform: p, source: source})
	return nil
}

// config is the checked form of the command line.
type config struct {
	ref             string
	entrypoint      string
	bins            []binary
	layoutDir       string
	tarball         string
	tarballPlatform v1.Platform
	push            bool
}

// parseArgs parses and validates args without touching the file system, so
// every usage error is reported before anything is built.
func parseArgs(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg     config
		bins    binFlag
		tarPlat string
	)
	fs.StringVar(&cfg.ref, "ref", "", "image reference to tag the image with, e.g. example.local/app:dev (required)")
	fs.StringVar(&cfg.entrypoint, "entrypoint", "", "absolute path of the binary inside the image; it is also the entrypoint (required)")
	fs.Var(&bins, "bin", "OS/ARCH[/VARIANT]=HOSTPATH: static binary for one platform (repeatable, at least one)")
	fs.StringVar(&cfg.layoutDir, "oci-layout", "", "write a multi-arch OCI image layout of all -bin platforms to this directory, replacing it")
	fs.BoolVar(&cfg.push, "push", false, "push the multi-arch image (an index of all -bin platforms) to the registry of -ref")
	fs.StringVar(&cfg.tarball, "tarball", "", "write a docker-archive tarball of one platform to this file, for `ctr -n k8s.io images import`")
	// Images are always linux; only the architecture follows the host by default.
	fs.StringVar(&tarPlat, "tarball-platform", "linux/"+runtime.GOARCH, "platform of the -tarball image")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.bins = bins

	switch {
	case cfg.ref == "":
		return config{}, fmt.Errorf("-ref is required")
	case cfg.entrypoint == "":
		return config{}, fmt.Errorf("-entrypoint is required")
	case !path.IsAbs(cfg.entrypoint) || path.Clean(cfg.entrypoint) != cfg.entrypoint || cfg.entrypoint == "/":
		return config{}, fmt.Errorf("-entrypoint %q must be an absolute, clean path of a file", cfg.entrypoint)
	case len(cfg.bins) == 0:
		return config{}, fmt.Errorf("at least one -bin OS/ARCH=HOSTPATH is required")
	case cfg.layoutDir == "" && cfg.tarball == "" && !cfg.push:
		return config{}, fmt.Errorf("nothing to write: pass -oci-layout DIR, -tarball FILE and/or -push")
	}
	if _, err := name.NewTag(cfg.ref); err != nil {
		return config{}, fmt.Errorf("-ref: %w", err)
	}
	seen := map[string]bool{}
	for _, b := range cfg.bins {
		if seen[b.platform.String()] {
			return config{}, fmt.Errorf("-bin given twice for %s", b.platform.String())
		}
		seen[b.platform.String()] = true
	}
	if cfg.tarball != "" {
		p, err := parsePlatform(tarPlat)
		if err != nil {
			return config{}, fmt.Errorf("-tarball-platform: %w", err)
		}
		if _, ok := cfg.tarballBinary(p); !ok {
			return config{}, fmt.Errorf("no -bin for -tarball-platform %s; add -bin %s=PATH or pass -tarball-platform", p.String(), p.String())
		}
		cfg.tarballPlatform = p
	}
	return cfg, nil
}

// tarballBinary returns the index in c.bins of the binary for p. A variant
// only has to match when p names one, so "linux/arm64" selects a binary
// given as "linux/arm64/v8".
func (c config) tarballBinary(p v1.Platform) (int, bool) {
	for i, b := range c.bins {
		if b.platform.OS == p.OS && b.platform.Architecture == p.Architecture &&
			(p.Variant == "" || p.Variant == b.platform.Variant) {
			return i, true
		}
	}
	return 0, false
}

func parsePlatform(s string) (v1.Platform, error) {
	p, err := v1.ParsePlatform(s)
	if err != nil {
		return v1.Platform{}, fmt.Errorf("parse platform %q: %w", s, err)
	}
	if p.OS == "" || p.Architecture == "" || p.OSVersion != "" {
		return v1.Platform{}, fmt.Errorf("platform %q: want OS/ARCH or OS/ARCH/VARIANT", s)
	}
	return *p, nil
}

// run builds one image per -bin and writes the requested artifacts,
// reporting each on stderr.
func run(args []string, stderr io.Writer) error {
	cfg, err := parseArgs(args, stderr)
	if err != nil {
		return err
	}
	imgs := make([]v1.Image, 0, len(cfg.bins))
	for _, b := range cfg.bins {
		img, err := ociimage.Build(ociimage.Spec{
			Platform:   b.platform,
			Files:      []ociimage.File{{Path: cfg.entrypoint, Source: b.source, Mode: 0o755}},
			Entrypoint: []string{cfg.entrypoint},
		})
		if err != nil {
			return err
		}
		imgs = append(imgs, img)
	}

	idx, err := ociimage.Index(imgs...)
	if err != nil {
		return err
	}
	if cfg.push {
		if err := ociimage.Push(context.Background(), cfg.ref, idx); err != nil {
			return err
		}
		d, err := idx.Digest()
		if err != nil {
			return fmt.Errorf("digest of index: %w", err)
		}
		fmt.Fprintf(stderr, "pushed %s@%s (%s)\n", cfg.ref, d, platforms(cfg.bins))
	}
	if cfg.layoutDir != "" {
		if err := ociimage.WriteLayout(cfg.layoutDir, cfg.ref, idx); err != nil {
			return err
		}
		d, err := idx.Digest()
		if err != nil {
			return fmt.Errorf("digest of index: %w", err)
		}
		fmt.Fprintf(stderr, "wrote OCI layout %s: %s %s (%s)\n", cfg.layoutDir, cfg.ref, d, platforms(cfg.bins))
	}
	if cfg.tarball != "" {
		i, _ := cfg.tarballBinary(cfg.tarballPlatform)
		if err := ociimage.WriteTarball(cfg.tarball, cfg.ref, imgs[i]); err != nil {
			return err
		}
		id, err := imgs[i].ConfigName()
		if err != nil {
			return fmt.Errorf("image id: %w", err)
		}
		fmt.Fprintf(stderr, "wrote docker-archive %s: %s id %s (%s)\n", cfg.tarball, cfg.ref, id, cfg.bins[i].platform.String())
	}
	return nil
}

func platforms(bins []binary) string {
	s := make([]string, 0, len(bins))
	for _, b := range bins {
		s = append(s, b.platform.String())
	}
	return strings.Join(s, ", ")
}
