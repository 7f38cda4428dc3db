package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// allPlatforms are the platforms `make dist` packs.
var allPlatforms = []string{"darwin/amd64", "darwin/arm64", "linux/amd64", "linux/arm64", "windows/amd64"}

// fixture writes stand-ins for the binaries and extra files, and returns mkdist's arguments.
func fixture(t *testing.T, dir string) []string {
	t.Helper()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	args := []string{
		"-version", "v1.2.3-rc.1",
		"-out", filepath.Join(dir, "dist"),
		"-base-url", "https://example.com/releases/v1.2.3-rc.1/",
		"-file", write("LICENSE", "license text", 0o644),
		"-unix-file", write("scripts/kubectl_complete-remocal", "#!/bin/sh\n", 0o755),
		"-template", filepath.Join("..", "..", "..", "krew", "remocal.yaml.tmpl"),
		"-manifest", filepath.Join(dir, "krew", "remocal.yaml"),
		"-mtime", "1700000000",
	}
	// In reverse order: the manifest must list them sorted anyway.
	for i := len(allPlatforms) - 1; i >= 0; i-- {
		p := allPlatforms[i]
		args = append(args, "-bin", p+"="+write("build/"+strings.ReplaceAll(p, "/", "-")+"/kubectl-remocal", "binary for "+p, 0o755))
	}
	return args
}

// archiveEntry is what a test reads back from an archive.
type archiveEntry struct {
	Mode    os.FileMode
	Content string
}

func readTarGz(t *testing.T, path string) map[string]archiveEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	got := map[string]archiveEntry{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Uid != 0 || hdr.Gid != 0 || hdr.ModTime.Unix() != 1700000000 {
			t.Errorf("%s: %+v, want a regular file of root dated -mtime", hdr.Name, hdr)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		got[hdr.Name] = archiveEntry{Mode: os.FileMode(hdr.Mode), Content: string(b)}
	}
}

func readZip(t *testing.T, path string) map[string]archiveEntry {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	got := map[string]archiveEntry{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		got[f.Name] = archiveEntry{Mode: f.Mode(), Content: string(b)}
	}
	return got
}

func TestRunPacksEveryPlatformAndWritesTheManifest(t *testing.T) {
	dir := t.TempDir()
	var stderr bytes.Buffer
	if err := run(fixture(t, dir), &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	dist := filepath.Join(dir, "dist")
	manifest, err := os.ReadFile(filepath.Join(dir, "krew", "remocal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m renderedManifest
	if err := yaml.Unmarshal(manifest, &m); err != nil {
		t.Fatal(err)
	}
	if m.Spec.Version != "v1.2.3-rc.1" || len(m.Spec.Platforms) != len(allPlatforms) {
		t.Fatalf("manifest version %q with %d platforms:\n%s", m.Spec.Version, len(m.Spec.Platforms), manifest)
	}

	for i, p := range allPlatforms {
		osName, arch, _ := strings.Cut(p, "/")
		windows := osName == "windows"
		name := "kubectl-remocal_v1.2.3-rc.1_" + osName + "_" + arch + ".tar.gz"
		want := map[string]archiveEntry{
			"kubectl-remocal":          {Mode: 0o755, Content: "binary for " + p},
			"kubectl_complete-remocal": {Mode: 0o755, Content: "#!/bin/sh\n"},
			"LICENSE":                  {Mode: 0o644, Content: "license text"},
		}
		bin := "kubectl-remocal"
		if windows {
			name = strings.TrimSuffix(name, ".tar.gz") + ".zip"
			bin = "kubectl-remocal.exe"
			// A shell script is of no use to kubectl on windows.
			want = map[string]archiveEntry{bin: want["kubectl-remocal"], "LICENSE": want["LICENSE"]}
		}
		archive := filepath.Join(dist, name)
		var got map[string]archiveEntry
		if windows {
			got = readZip(t, archive)
		} else {
			got = readTarGz(t, archive)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s holds %v, want %v", name, got, want)
		}

		b, err := os.ReadFile(archive)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		hexSum := hex.EncodeToString(sum[:])
		if line, err := os.ReadFile(archive + ".sha256"); err != nil || string(line) != hexSum+"  "+name+"\n" {
			t.Errorf("%s.sha256 = %q, %v; want sha256sum's line for it", name, line, err)
		}

		pl := m.Spec.Platforms[i]
		if pl.Selector.MatchLabels["os"] != osName || pl.Selector.MatchLabels["arch"] != arch {
			t.Errorf("platforms[%d] selects %v, want %s", i, pl.Selector.MatchLabels, p)
		}
		if pl.URI != "https://example.com/releases/v1.2.3-rc.1/"+name || pl.Sha256 != hexSum || pl.Bin != bin {
			t.Errorf("platforms[%d] = uri %q sha256 %q bin %q; want %s, %s, %s", i, pl.URI, pl.Sha256, pl.Bin, name, hexSum, bin)
		}
		if len(pl.Files) != len(want) {
			t.Errorf("platforms[%d] copies %v, want every file of the archive", i, pl.Files)
		}
	}
}

func TestRunIsReproducible(t *testing.T) {
	sums := func() string {
		dir := t.TempDir()
		if err := run(fixture(t, dir), io.Discard); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "krew", "remocal.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if a, b := sums(), sums(); a != b {
		t.Fatalf("two runs on the same files gave different manifests:\n%s\n---\n%s", a, b)
	}
}

func TestParseArgsRefuses(t *testing.T) {
	valid := []string{"-version", "v0.1.0", "-out", "d", "-base-url", "https://x", "-bin", "linux/amd64=b"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no version", []string{"-out", "d", "-base-url", "u", "-bin", "linux/amd64=b"}, "-version is required"},
		{"a version without v", append(valid, "-version", "0.1.0"), "not a semantic version"},
		{"a numeric pre-release with a leading zero", append(valid, "-version", "v0.0.0-0123"), "not a semantic version"},
		{"no base URL", []string{"-version", "v0.1.0", "-out", "d", "-bin", "linux/amd64=b"}, "-base-url is required"},
		{"no binary", []string{"-version", "v0.1.0", "-out", "d", "-base-url", "u"}, "at least one -bin"},
		{"a platform without arch", append(valid, "-bin", "linux=b"), "want OS/ARCH=PATH"},
		{"a platform twice", append(valid, "-bin", "linux/amd64=c"), "twice"},
		{"a template without manifest", append(valid, "-template", "t"), "go together"},
		{"an extra file named like the binary", append(valid, "-file", "x/kubectl-remocal"), "two archive entries"},
		{"a time zip cannot store", append(valid, "-mtime", "0"), "before 1980"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseArgs(tt.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("parseArgs(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
	for _, v := range []string{"v0.1.0", "v0.0.0-65e9623abcd1-dirty", "v1.0.0-rc.1+build.5", "v0.0.0-krew-e2e"} {
		if _, err := parseArgs(append(valid, "-version", v), io.Discard); err != nil {
			t.Errorf("version %s: %v", v, err)
		}
	}
}

func TestCheckManifestCatchesATemplateMistake(t *testing.T) {
	data := manifestData{Version: "v0.1.0", Platforms: []manifestPlatform{{
		OS: "linux", Arch: "amd64", URI: "https://x/a.tar.gz", Sha256: strings.Repeat("ab", 32), Bin: "kubectl-remocal", Files: []string{"kubectl-remocal"},
	}}}
	good := `spec:
  version: v0.1.0
  platforms:
  - selector: {matchLabels: {os: linux, arch: amd64}}
    uri: https://x/a.tar.gz
    sha256: ` + strings.Repeat("ab", 32) + `
    bin: kubectl-remocal
    files: [{from: kubectl-remocal, to: .}]
`
	if err := checkManifest([]byte(good), data); err != nil {
		t.Fatalf("a faithful manifest: %v", err)
	}
	for name, bad := range map[string]string{
		"sha256 at the wrong level": strings.Replace(good, "    sha256:", "  sha256:", 1),
		"another arch":              strings.Replace(good, "arch: amd64", "arch: arm64", 1),
		"a file left out":           strings.Replace(good, "files: [{from: kubectl-remocal, to: .}]", "files: []", 1),
		"a file copied elsewhere":   strings.Replace(good, "to: .", "to: bin", 1),
		"not YAML":                  good + "\t:",
	} {
		if err := checkManifest([]byte(bad), data); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
