package version

import (
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// ociTag is the tag grammar of the OCI distribution spec.
var ociTag = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

func TestImageTag(t *testing.T) {
	tests := []struct {
		name    string
		version string
		want    string
	}{
		{name: "release", version: "v1.2.3", want: "v1.2.3"},
		{name: "dev default", version: devVersion, want: "v0.0.0-dev"},
		{name: "pre-release", version: "v1.2.3-rc.1", want: "v1.2.3-rc.1"},
		{name: "build metadata", version: "v1.2.3+dirty", want: "v1.2.3-dirty"},
		{name: "pseudo-version", version: "v0.0.0-20260101120000-abcdef123456", want: "v0.0.0-20260101120000-abcdef123456"},
		{name: "slash and spaces", version: "feature/x y", want: "feature-x-y"},
		{name: "leading dot", version: ".hidden", want: "_hidden"},
		{name: "leading dash", version: "-x", want: "_x"},
		{name: "non-ascii", version: "vé1", want: "v-1"},
		{name: "empty", version: "", want: devVersion},
		{name: "too long", version: strings.Repeat("a", 200), want: strings.Repeat("a", maxTagLength)},
		{name: "too long non-ascii", version: strings.Repeat("é", 200), want: "_" + strings.Repeat("-", maxTagLength-1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := imageTag(tt.version)
			if got != tt.want {
				t.Errorf("imageTag(%q) = %q, want %q", tt.version, got, tt.want)
			}
			if !ociTag.MatchString(got) {
				t.Errorf("imageTag(%q) = %q is not a valid OCI tag", tt.version, got)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	installed := &debug.BuildInfo{Main: debug.Module{Path: "github.com/remocal/kubectl-remocal", Version: "v0.3.0"}}
	devel := &debug.BuildInfo{Main: debug.Module{Path: "github.com/remocal/kubectl-remocal", Version: "(devel)"}}
	tests := []struct {
		name        string
		stamped     string
		commit      string
		bi          *debug.BuildInfo
		wantVersion string
		wantCommit  string
	}{
		{name: "stamped wins over module version", stamped: "v1.0.0", commit: "abc1234", bi: installed, wantVersion: "v1.0.0", wantCommit: "abc1234"},
		{name: "go install of a tagged module", stamped: devVersion, bi: installed, wantVersion: "v0.3.0"},
		{name: "local build", stamped: devVersion, bi: devel, wantVersion: devVersion},
		{name: "no build info", stamped: devVersion, bi: nil, wantVersion: devVersion},
		{name: "stamped empty", stamped: "", bi: nil, wantVersion: devVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := resolve(tt.stamped, tt.commit, tt.bi)
			want := Info{
				Version:   tt.wantVersion,
				Commit:    tt.wantCommit,
				GoVersion: runtime.Version(),
				Platform:  runtime.GOOS + "/" + runtime.GOARCH,
			}
			if got != want {
				t.Errorf("resolve() = %+v, want %+v", got, want)
			}
		})
	}
}

func TestDefaultSidecarImage(t *testing.T) {
	got := DefaultSidecarImage()
	want := SidecarImageRepository + ":" + imageTag(Get().Version)
	if got != want {
		t.Errorf("DefaultSidecarImage() = %q, want %q", got, want)
	}
	tag := strings.TrimPrefix(got, SidecarImageRepository+":")
	if !ociTag.MatchString(tag) {
		t.Errorf("DefaultSidecarImage() tag %q is not a valid OCI tag", tag)
	}
}
