package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"text/template"

	"sigs.k8s.io/yaml"
)

// manifestData is what the krew manifest template is rendered with.
type manifestData struct {
	Version   string
	Platforms []manifestPlatform
}

// manifestPlatform is one entry of the manifest's spec.platforms.
type manifestPlatform struct {
	OS, Arch string
	URI      string
	Sha256   string
	Bin      string   // the executable's path in the archive
	Files    []string // every file in the archive, all copied to the plugin's directory
}

// renderedManifest is the part of a krew manifest this command fills in, read back from the
// rendered YAML to check the template put every value where krew looks for it.
type renderedManifest struct {
	Spec struct {
		Version   string `json:"version"`
		Platforms []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			Sha256 string `json:"sha256"`
			Bin    string `json:"bin"`
			Files  []struct {
				From string `json:"from"`
				To   string `json:"to"`
			} `json:"files"`
		} `json:"platforms"`
	} `json:"spec"`
}

// writeManifest renders the template at templatePath with data into out.
func writeManifest(templatePath, out string, data manifestData) error {
	text, err := os.ReadFile(templatePath)
	if err != nil {
		return fmt.Errorf("read manifest template: %w", err)
	}
	tmpl, err := template.New(filepath.Base(templatePath)).Option("missingkey=error").Parse(string(text))
	if err != nil {
		return fmt.Errorf("parse manifest template: %w", err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		return fmt.Errorf("render manifest template: %w", err)
	}
	if err := checkManifest(b.Bytes(), data); err != nil {
		return fmt.Errorf("manifest rendered from %s: %w", templatePath, err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("create manifest directory: %w", err)
	}
	if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

// checkManifest reads the rendered manifest back and compares it with data. It is not krew's
// validation (the e2e test runs krew itself); it catches a template that drops or misplaces a
// value, which would otherwise show only as a failed install.
func checkManifest(rendered []byte, data manifestData) error {
	var m renderedManifest
	if err := yaml.Unmarshal(rendered, &m); err != nil {
		return fmt.Errorf("not valid YAML: %w", err)
	}
	if m.Spec.Version != data.Version {
		return fmt.Errorf("spec.version is %q, want %q", m.Spec.Version, data.Version)
	}
	if len(m.Spec.Platforms) != len(data.Platforms) {
		return fmt.Errorf("%d spec.platforms, want %d", len(m.Spec.Platforms), len(data.Platforms))
	}
	for i, want := range data.Platforms {
		got := m.Spec.Platforms[i]
		where := fmt.Sprintf("spec.platforms[%d] (%s/%s)", i, want.OS, want.Arch)
		switch {
		case got.Selector.MatchLabels["os"] != want.OS || got.Selector.MatchLabels["arch"] != want.Arch || len(got.Selector.MatchLabels) != 2:
			return fmt.Errorf("%s: selector.matchLabels is %v, want os and arch only", where, got.Selector.MatchLabels)
		case got.URI != want.URI:
			return fmt.Errorf("%s: uri is %q, want %q", where, got.URI, want.URI)
		case got.Sha256 != want.Sha256:
			return fmt.Errorf("%s: sha256 is %q, want %q", where, got.Sha256, want.Sha256)
		case got.Bin != want.Bin:
			return fmt.Errorf("%s: bin is %q, want %q", where, got.Bin, want.Bin)
		}
		var from []string
		for _, f := range got.Files {
			if f.To != "." {
				return fmt.Errorf("%s: files copies %s to %q, want the plugin's directory \".\"", where, f.From, f.To)
			}
			from = append(from, f.From)
		}
		if !slices.Equal(from, want.Files) {
			return fmt.Errorf("%s: files are %v, want the archive's %v", where, from, want.Files)
		}
	}
	return nil
}
