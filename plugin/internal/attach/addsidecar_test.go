package attach

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	"github.com/remocal/kubectl-remocal/pkg/sidecarapi"
	"github.com/remocal/kubectl-remocal/plugin/internal/usererr"
)

// A sidecar the kubelet reports Started whose status never follows is a stuck pod (after a node
// restart the API server refuses the kubelet's status updates of a pod whose old ephemeral
// containers it ran again): one clear error in seconds, not the whole start timeout.
func TestSidecarStartedButStatusStuck(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "u1"}}
	started := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web.1", Namespace: "ns"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web", UID: "u1", FieldPath: "spec.ephemeralContainers{remocal-abcde}"},
		Reason:         "Started",
		Type:           corev1.EventTypeNormal,
	}
	client := fake.NewClientset(pod, started)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	begin := time.Now()
	_, err := waitSidecarRunning(ctx, client, pod, "remocal-abcde", 20*time.Second)
	if err == nil || !usererr.Is(err) || !strings.Contains(err.Error(), "status is stuck") {
		t.Fatalf("waitSidecarRunning = %v; want the stuck-status error", err)
	}
	if took := time.Since(begin); took > statusLagLimit+2*time.Second {
		t.Fatalf("took %s", took)
	}
	// Once the status says running, the same event is just the usual lag.
	pod.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{{Name: "remocal-abcde", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	if _, err := client.CoreV1().Pods("ns").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := waitSidecarRunning(ctx, client, pod, "remocal-abcde", 3*time.Second); err != nil || got == nil {
		t.Fatalf("waitSidecarRunning = %v, %v; want running", got, err)
	}
}

// Each refusal of the patch that adds the sidecar is one line saying what to do, decided from
// what the API server's Status says rather than its wording.
func TestAddSidecarErrors(t *testing.T) {
	pods := schema.GroupResource{Resource: "pods"}
	tests := []struct {
		name string
		err  error
		want string
		user bool // a line for the user, the API's error only under -v
	}{
		{
			name: "no ephemeralcontainers subresource",
			// The API server's answer to a path it does not serve: a Status that names nothing.
			err:  apierrors.NewGenericServerResponse(http.StatusNotFound, "", schema.GroupResource{}, "", "", 0, false),
			want: "ephemeral containers are disabled for this cluster (the pods/ephemeralcontainers subresource does not exist); remocal needs Kubernetes 1.25 or later",
			user: true,
		},
		{
			name: "a 404 that is no Status",
			// client-go's own Status for a body it cannot read: it names the pod of the request.
			err:  apierrors.NewGenericServerResponse(http.StatusNotFound, "patch", pods, "web", "404 page not found", 0, true),
			want: "ephemeral containers are disabled for this cluster",
			user: true,
		},
		{
			name: "pod gone",
			err:  apierrors.NewNotFound(pods, "web"),
			want: `add sidecar to pod web: pods "web" not found`,
		},
		{
			name: "Pod Security",
			err:  apierrors.NewForbidden(pods, "web", errors.New(`violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "remocal-x" must set securityContext.allowPrivilegeEscalation=false)`)),
			want: `Pod Security admission refused the sidecar in namespace ns: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "remocal-x" must set securityContext.allowPrivilegeEscalation=false)`,
			user: true,
		},
		{
			name: "RBAC",
			err:  apierrors.NewForbidden(schema.GroupResource{Resource: "pods/ephemeralcontainers"}, "web", errors.New(`User "dev" cannot patch resource "pods/ephemeralcontainers" in API group "" in the namespace "ns"`)),
			want: "not allowed to add an ephemeral container to pod web: Forbidden; ask for patch on pods/ephemeralcontainers",
			user: true,
		},
		{
			name: "anything else",
			err:  apierrors.NewInternalError(errors.New("etcd is down")),
			want: "add sidecar to pod web: Internal error occurred: etcd is down",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}}
			client := fake.NewClientset(pod)
			client.PrependReactor("patch", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
				if action.GetSubresource() != "ephemeralcontainers" {
					t.Errorf("patch of %q, want the ephemeralcontainers subresource", action.GetSubresource())
				}
				return true, nil, tt.err
			})
			err := addSidecar(t.Context(), client, pod, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "remocal-x"}})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("addSidecar = %v, want %q", err, tt.want)
			}
			if usererr.Is(err) != tt.user || !errors.Is(err, tt.err) {
				t.Errorf("addSidecar = %#v: user error %v (want %v), wraps the API's error %v", err, usererr.Is(err), tt.user, errors.Is(err, tt.err))
			}
		})
	}
}

// A pull that fails for another reason is reported with the pull's own error, not the kubelet's
// summary "Error: ErrImagePull" that may be listed before it.
func TestSidecarPullFailureNamesThePullError(t *testing.T) {
	const missing = `Failed to pull image "registry.example/team/remocal-sidecar:v9": rpc error: code = NotFound desc = failed to pull and unpack image "registry.example/team/remocal-sidecar:v9": failed to resolve reference "registry.example/team/remocal-sidecar:v9": registry.example/team/remocal-sidecar:v9: not found`
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "u1"}}
	event := func(n, message string) *corev1.Event {
		return &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: "web." + n, Namespace: "ns"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web", UID: "u1", FieldPath: "spec.ephemeralContainers{remocal-abcde}"},
			Reason:         "Failed",
			Type:           corev1.EventTypeWarning,
			Message:        message,
		}
	}
	client := fake.NewClientset(pod, event("1", "Error: ErrImagePull"), event("2", missing))
	_, err := waitSidecarRunning(t.Context(), client, pod, "remocal-abcde", 5*time.Second)
	want := "the sidecar cannot start: " + missing + "; check that the image exists and the node can pull it, or pass --sidecar-image"
	if err == nil || !usererr.Is(err) || err.Error() != want {
		t.Fatalf("waitSidecarRunning = %v\nwant %s", err, want)
	}
}

// A sidecar whose log has its start line while the pod status says nothing of it is a stuck
// pod too, for the kubelet's Started event is gone once the pod had 25 events from it: one
// clear error in seconds, not the whole start timeout. A sidecar not logging yet, or one the
// status names as waiting, is only slow. The API is served over HTTP here, for the fake
// clientset's logs are always "fake logs".
func TestSidecarLoggingButStatusStuck(t *testing.T) {
	const sidecar = "remocal-new"
	// The kubelet's last update that landed, for each pod: a sidecar of before the node
	// restart, ended; and for "slow", this sidecar as waiting.
	old := corev1.ContainerStatus{Name: "remocal-old", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed"}}}
	waiting := corev1.ContainerStatus{Name: sidecar, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
	pods := map[string]*corev1.Pod{}
	for name, statuses := range map[string][]corev1.ContainerStatus{"stuck": {old}, "starting": {old}, "slow": {old, waiting}} {
		pods[name] = &corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name)},
			Status:     corev1.PodStatus{EphemeralContainerStatuses: statuses},
		}
	}
	logging := map[string]bool{"stuck": true, "slow": true} // whose sidecar the kubelet serves a log of
	var startLine bytes.Buffer
	sidecarapi.StartLine{Fingerprint: "sha256:" + strings.Repeat("ab", 32), Port: 12345}.Log(t.Context(), slog.New(slog.NewJSONHandler(&startLine, nil)))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/namespaces/ns/pods/{pod}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(pods[r.PathValue("pod")])
	})
	mux.HandleFunc("GET /api/v1/namespaces/ns/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(corev1.EventList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "EventList"}})
	})
	mux.HandleFunc("GET /api/v1/namespaces/ns/pods/{pod}/log", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("container") != sidecar || !logging[r.PathValue("pod")] {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"container is waiting to start: ContainerCreating","reason":"BadRequest","code":400}`)
			return
		}
		_, _ = w.Write(startLine.Bytes())
	})
	api := httptest.NewServer(mux)
	t.Cleanup(api.Close) // after the parallel subtests, unlike a defer
	client, err := kubernetes.NewForConfig(&rest.Config{Host: api.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("stuck", func(t *testing.T) {
		t.Parallel()
		begin := time.Now()
		_, err := waitSidecarRunning(t.Context(), client, pods["stuck"], sidecar, 30*time.Second)
		if err == nil || !usererr.Is(err) || !strings.Contains(err.Error(), "status is stuck") {
			t.Fatalf("waitSidecarRunning = %v; want the stuck-status error", err)
		}
		if took := time.Since(begin); took > statusLagLimit+2*logCheckEvery+3*time.Second {
			t.Fatalf("took %s", took)
		}
	})
	for _, name := range []string{"starting", "slow"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := waitSidecarRunning(t.Context(), client, pods[name], sidecar, statusLagLimit+3*time.Second)
			if err == nil || strings.Contains(err.Error(), "status is stuck") {
				t.Fatalf("waitSidecarRunning = %v; want the start timeout", err)
			}
		})
	}
}
