package sidecarapi

import (
	"slices"
	"testing"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

func TestFeatures(t *testing.T) {
	f := Features()
	if len(f) == 0 {
		t.Fatal("no features")
	}
	seen := map[string]bool{}
	for _, name := range f {
		if seen[name] {
			t.Errorf("feature %q twice", name)
		}
		seen[name] = true
	}
	// Both ends of this version speak all of them, so negotiating with itself keeps them all.
	if got := wire.Negotiate(f, Features()); !slices.Equal(got, f) {
		t.Errorf("Negotiate(Features(), Features()) = %q, want %q", got, f)
	}
	// Every caller gets its own slice: a client that trims its copy changes nobody else's.
	f[0] = "changed"
	if Features()[0] == "changed" {
		t.Error("Features returns a shared slice")
	}
}
