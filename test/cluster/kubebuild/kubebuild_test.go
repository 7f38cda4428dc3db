package kubebuild

import (
	"os"
	"path/filepath"
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

// A complete cache is used as it is, without the go command: the harness's `up` and the e2e
// tests find what an earlier run built, each binary where it has always been.
func TestCompleteCachesAreUsed(t *testing.T) {
	cache := t.TempDir()
	fake := func(dir string, bins ...string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, b := range append(bins, completeStamp) {
			if err := os.WriteFile(filepath.Join(dir, b), nil, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	fake(filepath.Join(cache, "kubernetes", "v1.34.4", "bin"), KubeCommands...)
	fake(filepath.Join(cache, "kubernetes", "v1.34.4", "kubectl"), "kubectl")
	fake(filepath.Join(cache, "coredns", "v1.12.1", "bin"), "coredns")
	fake(filepath.Join(cache, "krew", "v0.4.4", "bin"), "krew", "validate-krew-manifest")
	t.Setenv("PATH", "") // a go command run by mistake fails the test
	b := Builder{CacheDir: cache}
	ctx := t.Context()

	check := func(what, got string, cached bool, err error, want ...string) {
		t.Helper()
		if err != nil || !cached || got != filepath.Join(append([]string{cache}, want...)...) {
			t.Errorf("%s = %s, cached %v, %v; want the cached %s", what, got, cached, err, filepath.Join(want...))
		}
	}
	dir, cached, err := b.Kubernetes(ctx, "v1.34.4")
	check("Kubernetes", dir, cached, err, "kubernetes", "v1.34.4", "bin")
	bin, cached, err := b.Kubectl(ctx, "v1.34.4")
	check("Kubectl", bin, cached, err, "kubernetes", "v1.34.4", "kubectl", "kubectl")
	bin, cached, err = b.CoreDNS(ctx, "v1.12.1")
	check("CoreDNS", bin, cached, err, "coredns", "v1.12.1", "bin", "coredns")
	dir, cached, err = b.Krew(ctx, "v0.4.4")
	check("Krew", dir, cached, err, "krew", "v0.4.4", "bin")

	// A build killed half-way left no stamp: that cache is not used.
	if err := os.Remove(filepath.Join(cache, "kubernetes", "v1.34.4", "kubectl", completeStamp)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Kubectl(ctx, "v1.34.4"); err == nil {
		t.Error("Kubectl used a cache without its completion stamp")
	}
}

func TestDefaultCacheDir(t *testing.T) {
	t.Setenv("REMOCAL_CLUSTER_CACHE", "/elsewhere")
	if got := DefaultCacheDir(); got != "/elsewhere" {
		t.Errorf("DefaultCacheDir with REMOCAL_CLUSTER_CACHE = %s", got)
	}
	t.Setenv("REMOCAL_CLUSTER_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if got := DefaultCacheDir(); got != "/xdg/remocal" {
		t.Errorf("DefaultCacheDir = %s, want /xdg/remocal", got)
	}
}
