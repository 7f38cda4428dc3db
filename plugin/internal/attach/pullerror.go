package attach

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// credentialsRefusals are the words with which runtimes and registries refuse a pull for lack
// of credentials, the most telling first: the one found is quoted to the user. They come from
// containerd (its resolver and authorizer), CRI-O and Docker, relaying the registry's own
// UNAUTHORIZED and DENIED errors. A registry answers so for a repository that does not exist,
// too, when the puller may not see it (Docker Hub, GHCR): the line says "refused", not "missing".
// containerd's "failed to authorize" is not among them: it also prefixes a token request that
// never got an answer ("failed to authorize: failed to fetch anonymous token: ... i/o timeout").
var credentialsRefusals = []string{
	"401 Unauthorized",
	"403 Forbidden",
	"unexpected status: 401", // Docker's shortening of containerd's token error
	"unexpected status: 403",
	"no basic auth credentials",                  // a Basic challenge with nothing to answer it
	"pull access denied",                         // Docker Hub's answer, through containerd or Docker
	"requested access to the resource is denied", // the registry's DENIED
	"authentication required",                    // the registry's UNAUTHORIZED, through CRI-O
	"authorization failed",                       // containerd's ErrInvalidAuthorization
	"not authorized",                             // quay.io's UNAUTHORIZED, through CRI-O
	"unauthorized",                               // any registry's UNAUTHORIZED code
}

// credentialsRefusal finds in a kubelet's pull failure the words that say the registry wanted
// credentials the node did not have, as they stand in the message.
func credentialsRefusal(message string) (string, bool) {
	for _, words := range credentialsRefusals {
		if i := indexFold(message, words); i >= 0 {
			return message[i : i+len(words)], true
		}
	}
	return "", false
}

// indexFold is strings.Index ignoring ASCII case; the runtimes' wording varies in case only
// ("401 Unauthorized", "unauthorized: authentication required").
func indexFold(s, substr string) int {
	for i := 0; i+len(substr) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(substr)], substr) {
			return i
		}
	}
	return -1
}

// credentialsLine is the user's line for a sidecar whose image the registry refused for lack of
// credentials, message being the kubelet's pull failure (an event's or the waiting state's); ok
// is false for any other failure. It gets a line of its own because its fix is nowhere in
// remocal: an ephemeral container has no imagePullSecrets of its own (the API has no such
// field), the kubelet pulls it with the pod's spec.imagePullSecrets and the node's credentials,
// and a pod's imagePullSecrets cannot change once it exists.
func credentialsLine(pod *corev1.Pod, image, message string) (string, bool) {
	refusal, ok := credentialsRefusal(message)
	if !ok {
		return "", false
	}
	return fmt.Sprintf("the sidecar cannot start: the registry refused %s for lack of credentials (%s); "+
		"a sidecar pulls with pod %s's imagePullSecrets (%s) and the node's credentials, and cannot add its own: %s, "+
		"or pass --sidecar-image with an image the node can pull",
		image, refusal, pod.Name, pullSecretNames(pod), pullSecretFix(pod)), true
}

// pullSecretNames lists the pod's imagePullSecrets for the user's line.
func pullSecretNames(pod *corev1.Pod) string {
	if len(pod.Spec.ImagePullSecrets) == 0 {
		return "it has none"
	}
	names := make([]string, 0, len(pod.Spec.ImagePullSecrets))
	for _, s := range pod.Spec.ImagePullSecrets {
		names = append(names, s.Name)
	}
	return "it has " + strings.Join(names, ", ")
}

// pullSecretFix says where the registry's Secret must go: a pod's imagePullSecrets are fixed
// at its creation, so into the template of the workload that makes it, or into a new pod.
func pullSecretFix(pod *corev1.Pod) string {
	secret := "a kubernetes.io/dockerconfigjson Secret the registry accepts"
	if kind, name, ok := workloadOf(pod); ok {
		return fmt.Sprintf("add %s to imagePullSecrets in the pod template of %s/%s", secret, kind, name)
	}
	return fmt.Sprintf("create the pod anew with %s in its imagePullSecrets", secret)
}

// workloadOf names the workload whose pod template made the pod: its controller, except that a
// Deployment's ReplicaSet stands for the Deployment, which names it NAME-HASH with the hash the
// pod carries as its pod-template-hash label; editing the ReplicaSet's template would be undone.
func workloadOf(pod *corev1.Pod) (kind, name string, ok bool) {
	owner := metav1.GetControllerOf(pod)
	if owner == nil {
		return "", "", false
	}
	kind, name = strings.ToLower(owner.Kind), owner.Name
	if hash := pod.Labels["pod-template-hash"]; owner.Kind == "ReplicaSet" && hash != "" {
		if deployment, found := strings.CutSuffix(owner.Name, "-"+hash); found {
			return "deployment", deployment, true
		}
	}
	return kind, name, true
}
