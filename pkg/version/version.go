// Package version is the build identity of kubectl-remocal and its sidecar: which release a binary
// is, and therefore which sidecar image the plugin adds to pods.
//
// Release builds stamp it with
//
//	-ldflags "-X github.com/remocal/kubectl-remocal/pkg/version.version=v0.1.0 -X github.com/remocal/kubectl-remocal/pkg/version.commit=abc1234"
//
// The plugin and the sidecar are always released together, so the plugin's version is also the tag
// of the sidecar image it uses by default.
package version

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// devVersion marks a binary that was neither stamped nor installed from a tagged module version.
const devVersion = "v0.0.0-dev"

// Set at link time with -X; these are the only package-level variables, and are unexported so
// nothing can change the identity at run time.
var (
	version = devVersion
	commit  = ""
)

// SidecarImageRepository is where release builds publish the sidecar image.
const SidecarImageRepository = "ghcr.io/remocal/remocal-sidecar"

// maxTagLength is the longest tag the OCI distribution spec accepts.
const maxTagLength = 128

// Info describes one build.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the identity of the running binary.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(version, commit, bi)
}

// resolve prefers the stamped version, then the module version that `go install ...@vX.Y.Z`
// records, so that installs without our Makefile still pick a sidecar image that exists.
func resolve(stamped, stampedCommit string, bi *debug.BuildInfo) Info {
	v := stamped
	if v == "" {
		v = devVersion
	}
	if v == devVersion && bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	return Info{
		Version:   v,
		Commit:    stampedCommit,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
}

// DefaultSidecarImage is the sidecar image released together with this build.
func DefaultSidecarImage() string {
	return SidecarImageRepository + ":" + imageTag(Get().Version)
}

// imageTag turns a version into a valid OCI tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}); semver build
// metadata ("+dirty") would otherwise make the image reference unparsable.
func imageTag(v string) string {
	if v == "" {
		v = devVersion
	}
	var b strings.Builder
	for i, r := range v {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		case (r == '.' || r == '-') && i > 0:
			b.WriteRune(r)
		case i == 0:
			// A tag may not start with '.' or '-'.
			b.WriteByte('_')
		default:
			b.WriteByte('-')
		}
		if b.Len() == maxTagLength {
			break
		}
	}
	return b.String()
}
