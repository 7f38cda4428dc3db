package sidecarapi

import (
	"time"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// Features are the wire features of this version: what its sidecar offers in the hello reply and
// its plugin can use (a session that only looks also offers wire.FeatureInspect, which says so;
// the sidecar offers it to say it understands; the sidecar offers wire.FeatureNoRedirect only
// when it cannot redirect, and the plugin to say it understands). The hello negotiates the intersection with the
// other end's, which may be of another version.
func Features() []string {
	return []string{
		wire.FeatureEnv, wire.FeatureDialTCP, wire.FeatureDialUDP, wire.FeatureReadFile,
		wire.FeatureSteal, wire.FeatureMirror, wire.FeatureHTTPFilter, wire.FeatureRedirects,
		wire.FeatureFS, wire.FeatureSubscriptions, wire.FeatureInspect, wire.FeatureTarget,
		wire.FeatureLanes, wire.FeatureHTTPFilterTree, wire.FeatureSessions, wire.FeatureNoRedirect,
		wire.FeatureLaneReuse,
	}
}

// DialTimeout is how long the sidecar tries a connect whose wire.Dial names no timeout (or more
// than a minute), and how long the plugin gives one that has no deadline of its own.
const DialTimeout = 30 * time.Second
