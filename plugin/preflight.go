package plugin

import (
	"context"
	"fmt"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/remocal/kubectl-remocal/plugin/internal/usererr"
)

// permission is one RBAC verb on one resource the session needs.
type permission struct {
	verb, resource, subresource string
	why                         string
}

// sessionPermissions are what every session does: add the sidecar, reach it through a
// port-forward when the pod IP is not routable from here, and read its first log line (its key).
var sessionPermissions = []permission{
	{"patch", "pods", "ephemeralcontainers", "to add the remocal sidecar to the pod"},
	{"create", "pods", "portforward", "to reach the sidecar through the API server"},
	{"get", "pods", "log", "to read the sidecar's key fingerprint from its log"},
}

// checkPermissions asks the API server (SelfSubjectAccessReview) whether the user may do what the
// session needs, so a refusal is one line naming the missing verb rather than a raw 403 half-way
// through.
func checkPermissions(ctx context.Context, client kubernetes.Interface, namespace string) error {
	reviews, err := reviewPermissions(ctx, client, namespace, sessionPermissions)
	if err != nil {
		return err
	}
	var missing []string
	for _, r := range reviews {
		if !r.allowed {
			missing = append(missing, fmt.Sprintf("%s (%s)", r.permission, r.why))
		}
	}
	if len(missing) > 0 {
		return usererr.New(fmt.Sprintf("missing RBAC permission in namespace %s: %s; ask a cluster admin for a Role granting it",
			namespace, strings.Join(missing, "; ")))
	}
	return nil
}

func (p permission) String() string {
	if p.subresource == "" {
		return p.verb + " " + p.resource
	}
	return p.verb + " " + p.resource + "/" + p.subresource
}

// review is the API server's answer about one permission.
type review struct {
	permission
	allowed bool
	reason  string // the authorizer's, when it gave one
}

// reviewPermissions asks the API server, one SelfSubjectAccessReview each, whether the user has
// perms in namespace.
func reviewPermissions(ctx context.Context, client kubernetes.Interface, namespace string, perms []permission) ([]review, error) {
	reviews := make([]review, 0, len(perms))
	for _, p := range perms {
		attrs := &authorizationv1.ResourceAttributes{
			Namespace:   namespace,
			Verb:        p.verb,
			Resource:    p.resource,
			Subresource: p.subresource,
		}
		if p.resource == "namespaces" {
			attrs.Name = namespace // the namespace object itself, as a GET of it is authorized
		}
		req := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: attrs}}
		res, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, req, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("check RBAC permissions: %w", err)
		}
		reviews = append(reviews, review{permission: p, allowed: res.Status.Allowed, reason: res.Status.Reason})
	}
	return reviews, nil
}

// podSecurityLevel is a namespace's enforced Pod Security Admission level.
type podSecurityLevel string

const (
	psaPrivileged podSecurityLevel = "privileged"
	psaBaseline   podSecurityLevel = "baseline"
	psaRestricted podSecurityLevel = "restricted"
)

const psaEnforceLabel = "pod-security.kubernetes.io/enforce"

// namespaceSecurityLevel reads the enforced level. Without the label (or without permission to read
// namespaces, which many developers lack) the cluster default applies, which is privileged unless
// an admin configured otherwise; the API server's answer to the patch is then the final word.
func namespaceSecurityLevel(ctx context.Context, client kubernetes.Interface, namespace string) (podSecurityLevel, error) {
	nl, err := readSecurityLevel(ctx, client, namespace)
	return nl.level, err
}

// namespaceLevel is a namespace's enforced level and where it comes from, for doctor to show.
type namespaceLevel struct {
	level podSecurityLevel
	// labelled: the level is the namespace's label, not the cluster default.
	labelled bool
	// unread is why the namespace could not be read; the level is then assumed privileged.
	unread error
}

// readSecurityLevel is namespaceSecurityLevel with where the level comes from.
func readSecurityLevel(ctx context.Context, client kubernetes.Interface, namespace string) (namespaceLevel, error) {
	ns, err := client.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	if err != nil {
		return namespaceLevel{level: psaPrivileged, unread: err}, nil
	}
	switch level := podSecurityLevel(ns.Labels[psaEnforceLabel]); level {
	case "":
		return namespaceLevel{level: psaPrivileged}, nil
	case psaPrivileged, psaBaseline, psaRestricted:
		return namespaceLevel{level: level, labelled: true}, nil
	default:
		return namespaceLevel{}, fmt.Errorf("namespace %s has an unknown %s level %q", namespace, psaEnforceLabel, level)
	}
}
