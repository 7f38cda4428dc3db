package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/remocal/kubectl-remocal/internal/ociimage"
)

// registryLogin is the one user of a registry that wants credentials.
type registryLogin struct{ user, password string }

// startRegistry serves an OCI registry on 127.0.0.1, where the cluster's containerd, a host
// process, can pull from it over plain HTTP (containerd's CRI speaks HTTP to a localhost
// registry it has no hosts configuration for, and the test cluster has none). With a login,
// every request must carry it as Basic authentication, else it is refused with 401 and a Basic
// challenge, as a team's private registry does. It returns the registry's host:port and a count
// of the manifest requests it served. HEAD counts too: containerd resolves a tag with HEAD and
// skips the GET when it already holds the manifest's digest, as it does when `make
// cluster-load` imported the same image.
func startRegistry(t *testing.T, login *registryLogin) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var pulls atomic.Int64
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if login != nil {
			if user, password, ok := r.BasicAuth(); !ok || user != login.user || password != login.password {
				w.Header().Set("WWW-Authenticate", `Basic realm="remocal-e2e"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
		}
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.Contains(r.URL.Path, "/manifests/") {
			pulls.Add(1)
		}
		reg.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), &pulls
}

// sidecarIndex is the multi-arch sidecar image `make image` wrote beside the plugin it built.
func sidecarIndex(t *testing.T, pl *plugin) v1.ImageIndex {
	t.Helper()
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
	return multiArch
}

// The sidecar image comes from a registry the real way: pushed as a multi-arch index (what
// `make image-push` does), pulled by the node with imagePullPolicy IfNotPresent; a wrong tag
// fails within seconds with one line.
func TestSidecarImageFromARegistry(t *testing.T) {
	e := newEnv(t)
	e.deployEcho(t)
	pl := e.plugin(t)
	host, pulls := startRegistry(t, nil)
	// An image of its own, as in the credentials test below: the node tells it apart from the
	// sidecar image loaded for the other tests.
	multiArch := relabelled(t, sidecarIndex(t, pl), "remocal.e2e/registry")
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

// A team's mirror that wants credentials: an ephemeral container has no imagePullSecrets of its
// own, so the node pulls the sidecar with the target pod's. A pod without them fails within
// seconds with the line that says so, and nothing of the sidecar is left redirecting; a pod
// whose spec names a kubernetes.io/dockerconfigjson Secret for the registry gets its sidecar
// pulled with it, and the session works.
func TestSidecarImageFromARegistryWithCredentials(t *testing.T) {
	e := newEnv(t)
	pl := e.plugin(t)
	login := &registryLogin{user: "team", password: rand.String(16)}
	host, pulls := startRegistry(t, login)
	// An image of its own: from Kubernetes 1.35 on, once the node has pulled an image from a
	// registry, it checks every other pod's right to the same image by pulling it again
	// (KubeletEnsureSecretPulledImages), so the sidecar image loaded for the other tests,
	// pulled here under a registry's name, would then be pulled from ghcr.io for them.
	multiArch := relabelled(t, sidecarIndex(t, pl), "remocal.e2e/registry-with-credentials")

	// The push goes the way `docker login` and then `make image-push` go: the credentials
	// stored for the registry in the Docker configuration.
	auth := base64.StdEncoding.EncodeToString([]byte(login.user + ":" + login.password))
	dockerConfig, err := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{"auth": auth}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), dockerConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	// A tag per case, each new to the node: once pulled, IfNotPresent would not ask again.
	tag := "e2e-" + rand.String(8)
	denied := fmt.Sprintf("%s/remocal/remocal-sidecar:%s-denied", host, tag)
	allowed := fmt.Sprintf("%s/remocal/remocal-sidecar:%s-allowed", host, tag)
	for _, image := range []string{denied, allowed} {
		if err := ociimage.Push(e.ctx(t), image, multiArch); err != nil {
			t.Fatal(err)
		}
	}
	pulls.Store(0) // the pushes' own requests

	ctx := e.ctx(t)
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "mirror-pull"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: dockerConfig},
	}
	if _, err := e.client.CoreV1().Secrets(e.namespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	app := func(name string, pullSecrets ...corev1.LocalObjectReference) *corev1.Pod {
		e.createDeploymentSpec(t, name, corev1.PodSpec{
			ImagePullSecrets: pullSecrets,
			Containers: []corev1.Container{{
				Name: "http", Image: testApp(), ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"/testapp", "http", "-addr", ":8080"},
				Env:     []corev1.EnvVar{{Name: "FROM_POD", Value: name}},
			}},
		})
		pod, err := e.waitReadyPod(ctx, "app="+name)
		if err != nil {
			t.Fatal(err)
		}
		return pod
	}

	t.Run("a pod without imagePullSecrets", func(t *testing.T) {
		pod := app("nosecret")
		r := pl.run(t, "exec", "deployment/nosecret", "--sidecar-image", denied, "--", "true")
		assertOneLineError(t, r, "the registry refused "+denied+" for lack of credentials") // within 10 s
		for _, want := range []string{"imagePullSecrets (it has none)", "cannot add its own", "deployment/nosecret"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("the error does not say %q:\n%s", want, r.stderr)
			}
		}
		if n := pulls.Load(); n != 0 {
			t.Errorf("the registry served %d manifest requests without credentials", n)
		}
		r = pl.run(t, "clean", "pod/"+pod.Name, "--list")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "No port redirects in the pod." {
			t.Fatalf("clean --list: exit %d, want no redirect left:\n%s", r.code, r.stdout)
		}
	})

	t.Run("a pod whose imagePullSecrets open the registry", func(t *testing.T) {
		app("withsecret", corev1.LocalObjectReference{Name: secret.Name})
		r := pl.run(t, "exec", "deployment/withsecret", "--sidecar-image", allowed, "--", "printenv", "FROM_POD")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "withsecret" {
			t.Fatalf("exit %d, stdout %q, want the pod's FROM_POD\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		if pulls.Load() == 0 {
			t.Fatal("the node never asked the registry for the image with the pod's credentials")
		}
	})
}

// relabelled is idx with a label on each image's configuration: the same image under another
// ID, which the node tells apart from idx's.
func relabelled(t *testing.T, idx v1.ImageIndex, label string) v1.ImageIndex {
	t.Helper()
	manifest, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var adds []mutate.IndexAddendum
	for _, desc := range manifest.Manifests {
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cfg = cfg.DeepCopy()
		if cfg.Config.Labels == nil {
			cfg.Config.Labels = map[string]string{}
		}
		cfg.Config.Labels[label] = "true"
		if img, err = mutate.ConfigFile(img, cfg); err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: desc.Platform}})
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, manifest.MediaType), adds...)
}
