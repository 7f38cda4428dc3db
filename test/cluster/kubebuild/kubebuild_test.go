package kubebuild

import (
	"slices"
	"testing"
)

func TestStagingModules(t *testing.T) {
	gomod := []byte(`module k8s.io/kubernetes

require (
	k8s.io/api v0.0.0
)

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/client-go => ./staging/src/k8s.io/client-go
	github.com/other/thing => github.com/fork/thing v1.0.0
)
`)
	got := stagingModules(gomod)
	if want := []string{"k8s.io/api", "k8s.io/client-go"}; !slices.Equal(got, want) {
		t.Fatalf("stagingModules = %v, want %v", got, want)
	}
}

func TestMajorMinor(t *testing.T) {
	major, minor, err := majorMinor("v1.34.4")
	if err != nil || major != "1" || minor != "34" {
		t.Fatalf("majorMinor = %q %q %v", major, minor, err)
	}
	if _, _, err := majorMinor("latest"); err == nil {
		t.Fatal("want an error for a non-semver version")
	}
}
