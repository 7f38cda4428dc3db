package attach

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/remocal/kubectl-remocal/plugin/internal/usererr"
)

// Pull failures as kubelets report them, from the runtimes users run: the refusals for lack of
// credentials are told from every other failure, and the words quoted are the registry's.
func TestCredentialsRefusal(t *testing.T) {
	for _, tt := range []struct {
		name, message, want string // want "" is not a credentials refusal
	}{
		// This repository's own e2e cluster (containerd 1.6, kubelet 1.34) pulling from a
		// registry with Basic authentication for a pod without imagePullSecrets
		// (TestSidecarImageFromARegistryWithCredentials).
		{"containerd, basic auth, no secret",
			`Failed to pull image "127.0.0.1:41879/remocal/remocal-sidecar:e2e-lt2w845h-denied": failed to pull and unpack image "127.0.0.1:41879/remocal/remocal-sidecar:e2e-lt2w845h-denied": failed to resolve reference "127.0.0.1:41879/remocal/remocal-sidecar:e2e-lt2w845h-denied": pulling from host 127.0.0.1:41879 failed with status code [manifests e2e-lt2w845h-denied]: 401 Unauthorized`,
			"401 Unauthorized"},
		// containerd/containerd#11103 (Harbor, containerd 1.7).
		{"containerd, ECR proxy",
			`failed to pull and unpack image "123456789101.dkr.ecr.ap-southeast-2.amazonaws.com/k8s-example/pause@sha256:7031c1b2": failed to resolve reference "123456789101.dkr.ecr.ap-southeast-2.amazonaws.com/k8s-example/pause@sha256:7031c1b2": pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials`,
			"no basic auth credentials"},
		// containerd/containerd#5386, #7064: Docker Hub, a private repository.
		{"containerd, Docker Hub",
			`rpc error: code = Unknown desc = failed to pull and unpack image "docker.io/team/private:1": failed to resolve reference "docker.io/team/private:1": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed`,
			"pull access denied"},
		// earthly/earthly#1873: containerd's resolver after a refused token.
		{"containerd, token refused",
			`pull access denied, repository does not exist or may require authorization: authorization status: 401: authorization failed`,
			"pull access denied"},
		// gitpod-io/gitpod#14837, docker/docs#22787: the token endpoint refuses.
		{"containerd, oauth token",
			`failed to resolve reference "proxy.replicated.com/proxy/gitpod/busybox:1": failed to authorize: failed to fetch oauth token: unexpected status: 401 Unauthorized`,
			"401 Unauthorized"},
		{"containerd, GCR anonymous token",
			`Failed to pull image "gcr.io/team/app:1": rpc error: code = Unknown desc = failed to pull and unpack image "gcr.io/team/app:1": failed to resolve reference "gcr.io/team/app:1": failed to authorize: failed to fetch anonymous token: unexpected status: 403 Forbidden`,
			"403 Forbidden"},
		// docker-library/tomcat#321: Docker's short form.
		{"docker, status only",
			`amazoncorretto:11-al2-jdk: failed to authorize: failed to fetch anonymous token: unexpected status: 401`,
			"unexpected status: 401"},
		// kubernetes/community#4003, docker/for-mac#3381: dockershim and ECR or Nexus.
		{"docker, ECR",
			`Failed to pull image "nexus3.abcde.org:10004/abcde-qwerty-fe:2.2.22": rpc error: code = Unknown desc = Error response from daemon: Get https://nexus3.abcde.org:10004/v2/abcde-qwerty-fe/manifests/2.2.22: no basic auth credentials`,
			"no basic auth credentials"},
		{"docker, Docker Hub",
			`Error response from daemon: pull access denied for myimage, repository does not exist or may require 'docker login': denied: requested access to the resource is denied`,
			"pull access denied"},
		{"CRI-O",
			`rpc error: code = Unknown desc = reading manifest 1 in registry.example/team/app: unauthorized: authentication required`,
			"authentication required"},
		{"CRI-O, quay.io",
			`initializing source docker://quay.io/team/app:1: reading manifest 1 in quay.io/team/app: unauthorized: access to the requested resource is not authorized`,
			"not authorized"},
		{"case differs",
			`unexpected status code [manifests 1]: 401 UNAUTHORIZED`,
			"401 UNAUTHORIZED"},

		// Other failures: the image, the network or TLS, not credentials.
		{"missing tag",
			`Failed to pull image "127.0.0.1:40123/remocal/remocal-sidecar:e2e-x-missing": rpc error: code = NotFound desc = failed to pull and unpack image "127.0.0.1:40123/remocal/remocal-sidecar:e2e-x-missing": failed to resolve reference "127.0.0.1:40123/remocal/remocal-sidecar:e2e-x-missing": 127.0.0.1:40123/remocal/remocal-sidecar:e2e-x-missing: not found`,
			""},
		{"registry down",
			`failed to resolve reference "127.0.0.1:5999/remocal/no-such-image:1": failed to do request: Head "http://127.0.0.1:5999/v2/remocal/no-such-image/manifests/1": dial tcp 127.0.0.1:5999: connect: connection refused`,
			""},
		// ketches/registry-proxy#3: containerd's "failed to authorize" around a network failure.
		{"token endpoint unreachable",
			`failed to resolve reference "docker.ketches.cn/library/nginx:latest": failed to authorize: failed to fetch anonymous token: Get "https://auth.docker.io/token?scope=repository%3Alibrary%2Fnginx%3Apull&service=registry.docker.io": dial tcp 199.59.148.222:443: i/o timeout`,
			""},
		{"plain HTTP registry",
			`failed to do request: Head "https://registry.example:5000/v2/team/app/manifests/1": http: server gave HTTP response to HTTPS client`,
			""},
		{"TLS",
			`failed to do request: Head "https://registry.example/v2/team/app/manifests/1": tls: failed to verify certificate: x509: certificate signed by unknown authority`,
			""},
		{"platform",
			`failed to pull and unpack image "registry.example/team/app:1": no match for platform in manifest: not found`,
			""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := credentialsRefusal(tt.message)
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("credentialsRefusal = %q, %v; want %q", got, ok, tt.want)
			}
		})
	}
}

// The line names the pod's imagePullSecrets, or says it has none, and where the registry's
// Secret must go: the template of the workload that makes the pod, or a new pod.
func TestCredentialsLine(t *testing.T) {
	controller := true
	owned := func(kind, name string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{Kind: kind, Name: name, Controller: &controller}}
	}
	const refusal = `failed to resolve reference "registry.example/team/remocal-sidecar:v1": 401 Unauthorized`
	for _, tt := range []struct {
		name string
		pod  corev1.Pod
		want string
	}{
		{"deployment's pod without secrets",
			corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-7d9f-x2", Labels: map[string]string{"pod-template-hash": "7d9f"}, OwnerReferences: owned("ReplicaSet", "web-7d9f")}},
			"the sidecar cannot start: the registry refused registry.example/team/remocal-sidecar:v1 for lack of credentials (401 Unauthorized); " +
				"a sidecar pulls with pod web-7d9f-x2's imagePullSecrets (it has none) and the node's credentials, and cannot add its own: " +
				"add a kubernetes.io/dockerconfigjson Secret the registry accepts to imagePullSecrets in the pod template of deployment/web, " +
				"or pass --sidecar-image with an image the node can pull"},
		{"statefulset's pod with secrets",
			corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "db-0", OwnerReferences: owned("StatefulSet", "db")},
				Spec: corev1.PodSpec{ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}, {Name: "mirror"}}}},
			"(it has regcred, mirror) and the node's credentials, and cannot add its own: " +
				"add a kubernetes.io/dockerconfigjson Secret the registry accepts to imagePullSecrets in the pod template of statefulset/db,"},
		{"a ReplicaSet of its own",
			corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "rs-x2", OwnerReferences: owned("ReplicaSet", "rs")}},
			"in the pod template of replicaset/rs,"},
		{"bare pod",
			corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "debug"}},
			"create the pod anew with a kubernetes.io/dockerconfigjson Secret the registry accepts in its imagePullSecrets, or pass --sidecar-image"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := credentialsLine(&tt.pod, "registry.example/team/remocal-sidecar:v1", refusal)
			if !ok || !strings.Contains(got, tt.want) || strings.Contains(got, "\n") {
				t.Errorf("credentialsLine = %q, %v\nwant it to hold %q", got, ok, tt.want)
			}
		})
	}
	if line, ok := credentialsLine(&corev1.Pod{}, "x", "not found"); ok {
		t.Errorf("a missing image read as refused credentials: %q", line)
	}
}

// Whichever the kubelet reports first, the event of the failed pull or the waiting state, a
// refusal for lack of credentials ends the wait at once with the credentials line, the
// kubelet's message under it for -v.
func TestSidecarPullRefusedForCredentials(t *testing.T) {
	const (
		name  = "remocal-abcde"
		image = "registry.example/team/remocal-sidecar:v1"
		pull  = `Failed to pull image "registry.example/team/remocal-sidecar:v1": failed to pull and unpack image "registry.example/team/remocal-sidecar:v1": failed to resolve reference "registry.example/team/remocal-sidecar:v1": pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials`
	)
	newPod := func() *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "u1"},
			Spec: corev1.PodSpec{EphemeralContainers: []corev1.EphemeralContainer{{
				EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: name, Image: image},
			}}},
		}
	}
	event := func(n, message string) *corev1.Event {
		return &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: "web." + n, Namespace: "ns"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web", UID: "u1", FieldPath: "spec.ephemeralContainers{" + name + "}"},
			Reason:         "Failed",
			Type:           corev1.EventTypeWarning,
			Message:        message,
		}
	}
	waiting := newPod()
	waiting.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{{
		Name: name, Image: image,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: pull}},
	}}
	for _, tt := range []struct {
		name    string
		objects []runtime.Object
	}{
		// The kubelet's generic event may be listed before the one that holds the error.
		{"events", []runtime.Object{newPod(), event("1", "Error: ErrImagePull"), event("2", pull)}},
		{"status", []runtime.Object{waiting}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset(tt.objects...)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			_, err := waitSidecarRunning(ctx, client, newPod(), name, 5*time.Second)
			want := "the sidecar cannot start: the registry refused " + image + " for lack of credentials (no basic auth credentials); a sidecar pulls with pod web's imagePullSecrets (it has none)"
			if err == nil || !usererr.Is(err) || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("waitSidecarRunning = %v\nwant %q...", err, want)
			}
			if cause := errors.Unwrap(err); cause == nil || cause.Error() != pull {
				t.Errorf("the kubelet's message is not kept for -v: %v", cause)
			}
		})
	}
}
