package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// binName is the executable kubectl looks for on PATH to run "kubectl remocal"; every archive
// holds it under this name (plus ".exe" on windows), whatever the -bin file is called.
const binName = "kubectl-remocal"

// semverPattern is semver 2.0.0 with krew's leading "v": krew refuses to install a manifest
// whose spec.version does not parse, so a bad VERSION is refused before anything is packed.
var semverPattern = regexp.MustCompile(`^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
	`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
	`(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// platformBinary is one -bin flag: the plugin built for OS/ARCH.
type platformBinary struct {
	os, arch, source string
}

func (b platformBinary) platform() string { return b.os + "/" + b.arch }

// binFlag collects repeated -bin OS/ARCH=PATH flags.
type binFlag []platformBinary

func (b *binFlag) String() string {
	parts := make([]string, 0, len(*b))
	for _, bin := range *b {
		parts = append(parts, bin.platform()+"="+bin.source)
	}
	return strings.Join(parts, ",")
}

func (b *binFlag) Set(s string) error {
	plat, source, ok := strings.Cut(s, "=")
	osName, arch, okPlat := strings.Cut(plat, "/")
	if !ok || !okPlat || source == "" || osName == "" || arch == "" || strings.Contains(arch, "/") {
		return fmt.Errorf("want OS/ARCH=PATH, got %q", s)
	}
	*b = append(*b, platformBinary{os: osName, arch: arch, source: source})
	return nil
}

// listFlag collects a repeated flag's values.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// config is the checked form of the command line.
type config struct {
	version   string
	outDir    string
	baseURL   string
	bins      []platformBinary
	files     []string // in every archive
	unixFiles []string // in every archive but windows'
	template  string
	manifest  string
	mtime     time.Time
}

// parseArgs parses and validates args without touching the file system, so every usage error
// is reported before anything is packed.
func parseArgs(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("mkdist", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg              config
		bins             binFlag
		files, unixFiles listFlag
		mtime            int64
	)
	fs.StringVar(&cfg.version, "version", "", "release version, semver with a leading v (required)")
	fs.StringVar(&cfg.outDir, "out", "", "directory for the archives and their .sha256 files (required)")
	fs.StringVar(&cfg.baseURL, "base-url", "", "URL the archives are downloaded from; each archive's URI is BASE/ARCHIVE (required)")
	fs.Var(&bins, "bin", "OS/ARCH=PATH: the plugin built for one platform (repeatable, at least one)")
	fs.Var(&files, "file", "PATH: a file every archive holds at its root (repeatable)")
	fs.Var(&unixFiles, "unix-file", "PATH: a file every archive but windows' holds at its root, e.g. a shell script (repeatable)")
	fs.StringVar(&cfg.template, "template", "", "krew manifest template (text/template); with -manifest")
	fs.StringVar(&cfg.manifest, "manifest", "", "write the krew manifest rendered from -template to this file")
	// The zip format cannot date files before 1980; tar gets the same time so both agree.
	fs.Int64Var(&mtime, "mtime", time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), "modification time of every archive entry, Unix seconds (e.g. the commit's), for reproducible archives")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.bins, cfg.files, cfg.unixFiles = bins, files, unixFiles
	cfg.mtime = time.Unix(mtime, 0).UTC()
	cfg.baseURL = strings.TrimSuffix(cfg.baseURL, "/")

	switch {
	case cfg.version == "":
		return config{}, fmt.Errorf("-version is required")
	case !semverPattern.MatchString(cfg.version):
		return config{}, fmt.Errorf("-version %q is not a semantic version vMAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], which krew requires (a numeric pre-release part must not start with 0)", cfg.version)
	case cfg.outDir == "":
		return config{}, fmt.Errorf("-out is required")
	case cfg.baseURL == "":
		return config{}, fmt.Errorf("-base-url is required")
	case len(cfg.bins) == 0:
		return config{}, fmt.Errorf("at least one -bin OS/ARCH=PATH is required")
	case (cfg.template == "") != (cfg.manifest == ""):
		return config{}, fmt.Errorf("-template and -manifest go together")
	case cfg.mtime.Year() < 1980:
		return config{}, fmt.Errorf("-mtime %d is before 1980, which zip cannot store", mtime)
	}
	seen := map[string]bool{}
	for _, b := range cfg.bins {
		if seen[b.platform()] {
			return config{}, fmt.Errorf("-bin given twice for %s", b.platform())
		}
		seen[b.platform()] = true
	}
	names := map[string]bool{binName: true, binName + ".exe": true}
	for _, f := range slices.Concat(cfg.files, cfg.unixFiles) {
		if names[filepath.Base(f)] {
			return config{}, fmt.Errorf("two archive entries would be named %s", filepath.Base(f))
		}
		names[filepath.Base(f)] = true
	}
	return cfg, nil
}

// run packs one archive per -bin and then writes the manifest, reporting each on stderr.
func run(args []string, stderr io.Writer) error {
	cfg, err := parseArgs(args, stderr)
	if err != nil {
		return err
	}
	// Sorted, so the manifest lists platforms in the same order whatever the flags' order.
	slices.SortFunc(cfg.bins, func(a, b platformBinary) int { return strings.Compare(a.platform(), b.platform()) })
	var platforms []manifestPlatform
	for _, b := range cfg.bins {
		a, err := packPlatform(cfg, b)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s (sha256 %s)\n", filepath.Join(cfg.outDir, a.name), a.sha256)
		platforms = append(platforms, manifestPlatform{
			OS: b.os, Arch: b.arch, URI: cfg.baseURL + "/" + a.name, Sha256: a.sha256, Bin: a.bin, Files: a.entries,
		})
	}
	if cfg.manifest == "" {
		return nil
	}
	if err := writeManifest(cfg.template, cfg.manifest, manifestData{Version: cfg.version, Platforms: platforms}); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s (%d platforms)\n", cfg.manifest, len(platforms))
	return nil
}
