package attach

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
	cmdtesting "k8s.io/kubectl/pkg/cmd/testing"
	"k8s.io/kubectl/pkg/scheme"

	"github.com/remocal/kubectl-remocal/pkg/sidecarapi"
	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/plugin/internal/progress"
)

// fakeCluster is a cluster held by a fake clientset, the attacher's client, and served over
// HTTP to a kubectl TestFactory, its RESTClientGetter: the resource builder and kubectl's choice
// of a workload's pod read the same objects as the rest of the attacher.
type fakeCluster struct {
	*fake.Clientset
	// denied are the permissions, as "verb resource/subresource", that the API server's
	// SelfSubjectAccessReviews refuse; all others are allowed.
	denied map[string]bool
}

func newFakeCluster(t *testing.T, objs ...runtime.Object) *fakeCluster {
	t.Helper()
	c := &fakeCluster{Clientset: fake.NewClientset(objs...), denied: map[string]bool{}}
	c.PrependReactor("create", "selfsubjectaccessreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		review := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview).DeepCopy()
		attrs := review.Spec.ResourceAttributes
		review.Status.Allowed = !c.denied[Permission{Verb: attrs.Verb, Resource: attrs.Resource, Subresource: attrs.Subresource}.String()]
		return true, review, nil
	})
	// The kubelet: an ephemeral container runs as soon as it is in the pod's spec.
	c.PrependReactor("get", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		get, ok := action.(k8stesting.GetAction)
		if !ok || get.GetSubresource() != "" {
			return false, nil, nil // the log
		}
		obj, err := c.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), get.GetNamespace(), get.GetName())
		if err != nil {
			return true, nil, err
		}
		pod := obj.(*corev1.Pod).DeepCopy()
		for _, ec := range pod.Spec.EphemeralContainers {
			if slices.ContainsFunc(pod.Status.EphemeralContainerStatuses, func(s corev1.ContainerStatus) bool { return s.Name == ec.Name }) {
				continue
			}
			pod.Status.EphemeralContainerStatuses = append(pod.Status.EphemeralContainerStatuses, corev1.ContainerStatus{
				Name: ec.Name, Image: ec.Image, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
			})
		}
		return true, pod, nil
	})
	return c
}

// attacher is an attacher of the cluster's namespace ns for ref, as Complete builds one from
// the default flags.
func (c *fakeCluster) attacher(t *testing.T, ref string) *Attacher {
	t.Helper()
	tf := cmdtesting.NewTestFactory().WithNamespace("ns")
	t.Cleanup(tf.Cleanup)
	tf.ClientConfigVal = &rest.Config{Host: "http://198.18.0.1", Transport: roundTripperFunc(c.serve)}
	return New(Config{
		Getter:       tf,
		Client:       c,
		Namespace:    "ns",
		KeyPath:      filepath.Join(t.TempDir(), "key.pem"),
		Ref:          ref,
		Image:        "img",
		StartTimeout: 5 * time.Second,
		TTL:          sidecarapi.DefaultTTL,
		MaxLifetime:  sidecarapi.DefaultMaxLifetime,
		Transport:    TransportAuto,
		Use:          Use{Needs: Needs{Capture: true}},
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// serve answers the REST requests the resource builder and kubectl's pod choice make, for pods
// and deployments, from the clientset.
func (c *fakeCluster) serve(r *http.Request) (*http.Response, error) {
	ctx := r.Context()
	// /api/v1/namespaces/NS/pods[/NAME] or /apis/apps/v1/namespaces/NS/deployments[/NAME]
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	i := 0
	for i < len(parts) && parts[i] != "namespaces" {
		i++
	}
	if r.Method != http.MethodGet || i+2 >= len(parts) {
		return respond(nil, apierrors.NewMethodNotSupported(schema.GroupResource{}, r.Method))
	}
	ns, resource, name := parts[i+1], parts[i+2], ""
	if i+3 < len(parts) {
		name = parts[i+3]
	}
	q := r.URL.Query()
	if q.Get("watch") == "true" {
		// Nothing changes: the watch stays open until its watcher closes it.
		body, _ := io.Pipe()
		return &http.Response{StatusCode: http.StatusOK, Header: cmdtesting.DefaultHeader(), Body: body}, nil
	}
	list := metav1.ListOptions{LabelSelector: q.Get("labelSelector")}
	switch {
	case resource == "pods" && name != "":
		return respond(c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}))
	case resource == "pods":
		return respond(c.CoreV1().Pods(ns).List(ctx, list))
	case resource == "deployments" && name != "":
		return respond(c.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{}))
	case resource == "deployments":
		return respond(c.AppsV1().Deployments(ns).List(ctx, list))
	}
	return respond(nil, apierrors.NewNotFound(schema.GroupResource{Resource: resource}, name))
}

func respond(obj runtime.Object, err error) (*http.Response, error) {
	code, out := http.StatusOK, obj
	if status, ok := err.(*apierrors.StatusError); ok {
		code, out = int(status.ErrStatus.Code), &status.ErrStatus
	} else if err != nil {
		return nil, err
	}
	codec := scheme.Codecs.LegacyCodec(corev1.SchemeGroupVersion, appsv1.SchemeGroupVersion)
	body, err := runtime.Encode(codec, out)
	if err != nil {
		return nil, err
	}
	return &http.Response{StatusCode: code, Header: cmdtesting.DefaultHeader(), Body: io.NopCloser(bytes.NewReader(body))}, nil
}

func testPod(name string, phase corev1.PodPhase, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: labels, UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{
			NodeName:   "node",
			Containers: []corev1.Container{{Name: "app", Image: "app"}, {Name: "side", Image: "side"}},
		},
		Status: corev1.PodStatus{Phase: phase, PodIP: "198.18.0.2"},
	}
}

func testDeployment(name string, labels map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}},
	}
}

func TestAttacherResolve(t *testing.T) {
	web := map[string]string{"app": "web"}
	annotated := testPod("annotated", corev1.PodRunning, nil)
	annotated.Annotations = map[string]string{"kubectl.kubernetes.io/default-container": "side"}
	// Native sidecars come first in the pod spec, as init containers, yet the default is still
	// the first regular container, as for kubectl exec.
	always := corev1.ContainerRestartPolicyAlways
	meshed := testPod("meshed", corev1.PodRunning, nil)
	meshed.Spec.InitContainers = []corev1.Container{{Name: "migrate"}, {Name: "mesh", RestartPolicy: &always}}
	meshedDefault := meshed.DeepCopy()
	meshedDefault.Name, meshedDefault.Annotations = "meshed-default", map[string]string{"kubectl.kubernetes.io/default-container": "mesh"}
	objs := []runtime.Object{
		meshed,
		meshedDefault,
		testPod("solo", corev1.PodRunning, nil),
		annotated,
		testPod("waiting", corev1.PodPending, nil),
		testDeployment("web", web),
		testPod("web-new", corev1.PodPending, web),
		testPod("web-running", corev1.PodRunning, web),
		testDeployment("idle", map[string]string{"app": "idle"}),
	}
	tests := []struct {
		name, ref, container string
		wantPod, wantIn      string // the pod and container resolved
		wantVia              string
		wantErr              string
	}{
		{name: "pod", ref: "pod/solo", wantPod: "solo", wantIn: "app"},
		{name: "container flag", ref: "pod/solo", container: "side", wantPod: "solo", wantIn: "side"},
		{name: "default container annotation", ref: "pod/annotated", wantPod: "annotated", wantIn: "side"},
		{name: "deployment: its running pod", ref: "deployment/web", wantPod: "web-running", wantIn: "app", wantVia: "deployment/web"},
		{name: "unknown container", ref: "pod/solo", container: "nope", wantErr: `container "nope" not found in pod solo; its containers are: app, side`},
		{name: "native sidecar: not the default", ref: "pod/meshed", wantPod: "meshed", wantIn: "app"},
		{name: "native sidecar by the container flag", ref: "pod/meshed", container: "mesh", wantPod: "meshed", wantIn: "mesh"},
		{name: "native sidecar by the default container annotation", ref: "pod/meshed-default", wantPod: "meshed-default", wantIn: "mesh"},
		{name: "plain init container", ref: "pod/meshed", container: "migrate", wantErr: `container "migrate" is an init container, which ends before the app starts, in pod meshed; its containers are: app, mesh, side`},
		{name: "missing pod", ref: "pod/gone", wantErr: "pod/gone not found in namespace ns; it has: annotated, meshed, meshed-default, solo, waiting, web-new, web-running"},
		{name: "missing deployment", ref: "deployment/gone", wantErr: "deployment/gone not found in namespace ns; it has: idle, web"},
		{name: "workload without a pod", ref: "deployment/idle", wantErr: "deployment/idle has no pod in namespace ns (waited 300ms); check it with kubectl get deployment/idle -n ns"},
		{name: "pod not running", ref: "pod/waiting", wantErr: "pod waiting is Pending, not Running; remocal attaches to running pods only"},
		{name: "not TYPE/NAME", ref: "solo", wantErr: `target "solo" is not TYPE/NAME`},
		{name: "unsupported kind", ref: "service/solo", wantErr: `target kind "service" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newFakeCluster(t, objs...).attacher(t, tt.ref)
			a.Container = tt.container
			got, err := a.resolveWithin(t.Context(), 300*time.Millisecond)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("resolve(%s) = %v, want an error with %q", tt.ref, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolve(%s): %v", tt.ref, err)
			}
			if got.Pod.Name != tt.wantPod || got.Container != tt.wantIn || got.Via != tt.wantVia {
				t.Errorf("resolve(%s) = pod %s, container %s, via %q; want %s, %s, %q", tt.ref, got.Pod.Name, got.Container, got.Via, tt.wantPod, tt.wantIn, tt.wantVia)
			}
		})
	}
}

func TestAttacherPreflight(t *testing.T) {
	namespace := func(level string) *corev1.Namespace {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}}
		if level != "" {
			ns.Labels = map[string]string{EnforceLabel: level}
		}
		return ns
	}
	tests := []struct {
		name      string
		namespace *corev1.Namespace // nil: not there to read, as to a user who may not
		denied    []string
		want      SecurityLevel
		wantErr   string
	}{
		{name: "no label", namespace: namespace(""), want: LevelPrivileged},
		{name: "namespace unread", want: LevelPrivileged},
		{name: "restricted", namespace: namespace("restricted"), want: LevelRestricted},
		{name: "baseline", namespace: namespace("baseline"), want: LevelBaseline},
		{name: "unknown level", namespace: namespace("lenient"), wantErr: `namespace ns has an unknown pod-security.kubernetes.io/enforce level "lenient"`},
		{
			name: "no patch on ephemeral containers", namespace: namespace(""), denied: []string{"patch pods/ephemeralcontainers"},
			wantErr: "missing RBAC permission in namespace ns: patch pods/ephemeralcontainers (to add the remocal sidecar to the pod); ask a cluster admin for a Role granting it",
		},
		{
			name: "no port-forward, no log", namespace: namespace(""), denied: []string{"create pods/portforward", "get pods/log"},
			wantErr: "create pods/portforward (to reach the sidecar through the API server); get pods/log (to read the sidecar's key fingerprint from its log);",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var objs []runtime.Object
			if tt.namespace != nil {
				objs = append(objs, tt.namespace)
			}
			c := newFakeCluster(t, objs...)
			for _, d := range tt.denied {
				c.denied[d] = true
			}
			got, err := c.attacher(t, "pod/web").preflight(t.Context(), "ns")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("preflight = %q, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("preflight = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// start resolves, reuses or checks and adds, and connects, in that order. The fake clientset
// serves no sidecar log to read the key from, so every start here ends at connect, where the
// rows look at what happened before it.
func TestAttacherStart(t *testing.T) {
	// A sidecar of this client (its pin is filled in), running, as a session added it.
	mine := func(name string, direct bool) corev1.EphemeralContainer {
		return corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: name, Image: "img", Args: sidecarapi.Flags{
				Name: name, Port: 45000, TTL: time.Minute, MaxLifetime: sidecarapi.DefaultMaxLifetime, Direct: direct,
			}.Args()},
			TargetContainerName: "app",
		}
	}
	tests := []struct {
		name      string
		sidecars  []corev1.EphemeralContainer // running in the pod, this client's
		hostNet   bool
		windows   bool // the pod's node is a Windows one
		transport Transport
		denied    []string
		level     SecurityLevel // the namespace's enforced level, when labelled
		steals    string        // Use.Steals
		// the progress lines start must print (in order), and must not
		want, notWant []string
		wantErr       string
		wantAdded     bool
	}{
		{
			name: "a new sidecar", wantAdded: true,
			want:    []string{"target pod web, container app", "added sidecar remocal-", "(img), waiting for it to run", "sidecar running"},
			wantErr: "read the sidecar's first log line",
		},
		{
			name: "reuse, and replace one that does not answer", sidecars: []corev1.EphemeralContainer{mine("remocal-old", true)}, wantAdded: true,
			want:    []string{"reusing sidecar remocal-old", "warning: sidecar remocal-old does not answer (read the sidecar's first log line: EOF); adding a new one", "added sidecar remocal-"},
			wantErr: "read the sidecar's first log line",
		},
		{
			name: "--transport direct passes over a loopback-only sidecar", sidecars: []corev1.EphemeralContainer{mine("remocal-old", false)}, transport: TransportDirect, wantAdded: true,
			want: []string{"added sidecar remocal-"}, notWant: []string{"reusing"},
			wantErr: "read the sidecar's first log line",
		},
		{
			name: "no RBAC permission: nothing added", denied: []string{"patch pods/ephemeralcontainers"},
			want:    []string{"target pod web, container app"},
			wantErr: "missing RBAC permission in namespace ns: patch pods/ephemeralcontainers",
		},
		{
			name: "a steal under restricted: refused before anything is added", level: LevelRestricted, steals: "--steal",
			want:    []string{"target pod web, container app"},
			wantErr: `--steal needs the NET_ADMIN capability to redirect the pod's ports, which namespace ns's Pod Security level "restricted" forbids; run without --steal`,
		},
		{
			// Added under baseline, it cannot redirect: the steal goes on to the preflight.
			name: "a steal under baseline does not reuse a baseline sidecar", level: LevelBaseline, steals: "-R", sidecars: []corev1.EphemeralContainer{mine("remocal-old", true)},
			notWant: []string{"reusing"},
			wantErr: `-R needs the NET_ADMIN capability to redirect the pod's ports, which namespace ns's Pod Security level "baseline" forbids; run without -R`,
		},
		{
			name: "a mirror under baseline reuses it", level: LevelBaseline, sidecars: []corev1.EphemeralContainer{mine("remocal-old", true)}, wantAdded: true,
			want:    []string{"reusing sidecar remocal-old", "does not answer", "added sidecar remocal-"},
			wantErr: "read the sidecar's first log line",
		},
		{
			name: "a steal under privileged adds a sidecar", level: LevelPrivileged, steals: "--steal", wantAdded: true,
			want:    []string{"added sidecar remocal-"},
			wantErr: "read the sidecar's first log line",
		},
		{
			name: "a pod on the node's network: refused before anything", hostNet: true, sidecars: []corev1.EphemeralContainer{mine("remocal-old", true)},
			notWant: []string{"target pod"},
			wantErr: "pod web shares the node's network",
		},
		{
			name: "a pod on a Windows node: refused before anything", windows: true, sidecars: []corev1.EphemeralContainer{mine("remocal-old", true)},
			notWant: []string{"target pod"},
			wantErr: "pod web runs on Windows (node node is labelled kubernetes.io/os=windows); remocal's sidecar runs on Linux nodes only",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keyPath := filepath.Join(t.TempDir(), "key.pem")
			id, err := transport.LoadOrCreateIdentity(keyPath)
			if err != nil {
				t.Fatal(err)
			}
			pod := testPod("web", corev1.PodRunning, nil)
			pod.Spec.HostNetwork = tt.hostNet
			for _, ec := range tt.sidecars {
				flags := SidecarFlags(ec)
				flags.ClientPin = id.Fingerprint()
				ec.Args = flags.Args()
				pod.Spec.EphemeralContainers = append(pod.Spec.EphemeralContainers, ec)
				pod.Status.EphemeralContainerStatuses = append(pod.Status.EphemeralContainerStatuses, corev1.ContainerStatus{
					Name: ec.Name, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
				})
			}
			objs := []runtime.Object{pod}
			if tt.level != "" {
				objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", Labels: map[string]string{EnforceLabel: string(tt.level)}}})
			}
			if tt.windows {
				objs = append(objs, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: pod.Spec.NodeName, Labels: map[string]string{corev1.LabelOSStable: "windows"}}})
			}
			c := newFakeCluster(t, objs...)
			for _, d := range tt.denied {
				c.denied[d] = true
			}
			a := c.attacher(t, "pod/web")
			a.KeyPath = keyPath
			if tt.steals != "" {
				a.Use = Use{Needs: Needs{Redirect: true}, Steals: tt.steals}
			}
			if tt.transport != "" {
				a.Transport = tt.transport
			}
			var out bytes.Buffer
			sess, err := a.Start(t.Context(), progress.New(&out))
			if sess != nil {
				sess.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("start = %v, want an error with %q\n%s", err, tt.wantErr, &out)
			}
			rest := out.String()
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("progress lacks %q after what came before:\n%s", w, &out)
				}
				rest = rest[i+len(w):]
			}
			for _, w := range tt.notWant {
				if strings.Contains(out.String(), w) {
					t.Errorf("progress has %q:\n%s", w, &out)
				}
			}
			got, err := c.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), "ns", "web")
			if err != nil {
				t.Fatal(err)
			}
			added := slices.DeleteFunc(got.(*corev1.Pod).Spec.EphemeralContainers, func(ec corev1.EphemeralContainer) bool { return ec.Name == "remocal-old" })
			if !tt.wantAdded {
				if len(added) > 0 {
					t.Fatalf("added %d sidecars, want none", len(added))
				}
				return
			}
			if len(added) != 1 {
				t.Fatalf("added %d sidecars, want one", len(added))
			}
			flags := SidecarFlags(added[0])
			if added[0].Image != "img" || added[0].TargetContainerName != "app" || flags.ClientPin != id.Fingerprint() || flags.Direct != (a.Transport != TransportPortForward) {
				t.Errorf("added %s targeting %s with %q; want img targeting app, pinned to this client", added[0].Image, added[0].TargetContainerName, added[0].Args)
			}
		})
	}
}
