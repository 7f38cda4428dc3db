package e2e

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/remocal/kubectl-remocal/internal/ociimage"
)

// startRegistry serves an OCI registry on 127.0.0.1, where the cluster's containerd, a host
// process, can pull from it over plain HTTP (as it does for loopback registries). It returns
// the registry's host:port and a count of the manifest requests. HEAD counts too: containerd
// resolves a tag with HEAD and skips the GET when it already holds the manifest's digest, as it
// does when `make cluster-load` imported the same image.
func startRegistry(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var pulls atomic.Int64
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.Contains(r.URL.Path, "/manifests/") {
			pulls.Add(1)
		}
		reg.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), &pulls
}

// The sidecar image comes from a registry the real way: pushed as a multi-arch index (what
// `make image-push` does), pulled by the node with imagePullPolicy IfNotPresent; a wrong tag
// fails within seconds with one line.
func TestSidecarImageFromARegistry(t *testing.T) {
	e := newEnv(t)
	e.deployEcho(t)
	pl := e.plugin(t)
	host, pulls := startRegistry(t)

	// The multi-arch layout `make image` wrote beside the plugin it built.
	layoutDir := filepath.Join(filepath.Dir(pl.path), "image", "remocal-sidecar")
	idx, err := layout.ImageIndexFromPath(layoutDir)
	if err != nil {
		t.Skipf("no sidecar image layout at %s (make image writes it): %v", layoutDir, err)
	}
	// The layout's index holds the multi-arch index, the one image of the layout.
	manifest, err := idx.IndexManifest()
	if err != nil || len(manifest.Manifests) != 1 {
		t.Fatalf("layout index: %v, %d manifests", err, len(manifest.Manifests))
	}
	multiArch, err := idx.ImageIndex(manifest.Manifests[0].Digest)
	if err != nil {
		t.Fatalf("the layout holds no multi-arch index: %v", err)
	}
	// A tag of its own each run: the node must not have it already.
	image := fmt.Sprintf("%s/remocal/remocal-sidecar:e2e-%s", host, rand.String(8))
	if err := ociimage.Push(e.ctx(t), image, multiArch); err != nil {
		t.Fatal(err)
	}

	t.Run("pulled and run", func(t *testing.T) {
		r := pl.run(t, "exec", "deployment/echo", "--sidecar-image", image, "--", "true")
		if r.code != 0 {
			t.Fatalf("exit %d\nstderr:\n%s", r.code, r.stderr)
		}
		if pulls.Load() == 0 {
			t.Fatal("the node never asked the registry for the image")
		}
	})

	t.Run("a wrong tag fails fast and clearly", func(t *testing.T) {
		r := pl.run(t, "exec", "deployment/echo", "--sidecar-image", image+"-missing", "--", "true")
		assertOneLineError(t, r, "cannot start") // within 10 s
		if !strings.Contains(r.stderr, image+"-missing") {
			t.Errorf("the error does not name the image:\n%s", r.stderr)
		}
	})
}
