package attach

import (
	"context"
	"fmt"
	"slices"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/remocal/kubectl-remocal/plugin/internal/usererr"
)

// Permission is one RBAC verb on one resource the session needs.
type Permission struct {
	Verb, Resource, Subresource string
	Why                         string
}

// SessionPermissions are what every session does, which Start reviews before it adds a
// sidecar: add the sidecar, reach it through a port-forward when the pod IP is not routable
// from here, and read its first log line (its key).
func SessionPermissions() []Permission {
	return slices.Clone(sessionPermissions)
}

// sessionPermissions are what every session does: add the sidecar, reach it through a
// port-forward when the pod IP is not routable from here, and read its first log line (its key).
var sessionPermissions = []Permission{
	{"patch", "pods", "ephemeralcontainers", "to add the remocal sidecar to the pod"},
	{"create", "pods", "portforward", "to reach the sidecar through the API server"},
	{"get", "pods", "log", "to read the sidecar's key fingerprint from its log"},
}

// checkPermissions asks the API server (SelfSubjectAccessReview) whether the user may do what the
// session needs, so a refusal is one line naming the missing verb rather than a raw 403 half-way
// through.
func checkPermissions(ctx context.Context, client kubernetes.Interface, namespace string) error {
	reviews, err := ReviewPermissions(ctx, client, namespace, sessionPermissions)
	if err != nil {
		return err
	}
	var missing []string
	for _, r := range reviews {
		if !r.Allowed {
			missing = append(missing, fmt.Sprintf("%s (%s)", r.Permission, r.Why))
		}
	}
	if len(missing) > 0 {
		return usererr.New(fmt.Sprintf("missing RBAC permission in namespace %s: %s; ask a cluster admin for a Role granting it",
			namespace, strings.Join(missing, "; ")))
	}
	return nil
}

// String is the permission as kubectl auth can-i spells it: "patch pods/ephemeralcontainers".
func (p Permission) String() string {
	if p.Subresource == "" {
		return p.Verb + " " + p.Resource
	}
	return p.Verb + " " + p.Resource + "/" + p.Subresource
}

// Review is the API server's answer about one permission.
type Review struct {
	Permission
	Allowed bool
	Reason  string // the authorizer's, when it gave one
}

// ReviewPermissions asks the API server, one SelfSubjectAccessReview each, whether the user has
// perms in namespace.
func ReviewPermissions(ctx context.Context, client kubernetes.Interface, namespace string, perms []Permission) ([]Review, error) {
	reviews := make([]Review, 0, len(perms))
	for _, p := range perms {
		attrs := &authorizationv1.ResourceAttributes{
			Namespace:   namespace,
			Verb:        p.Verb,
			Resource:    p.Resource,
			Subresource: p.Subresource,
		}
		if p.Resource == "namespaces" {
			attrs.Name = namespace // the namespace object itself, as a GET of it is authorized
		}
		req := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: attrs}}
		res, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, req, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("check RBAC permissions: %w", err)
		}
		reviews = append(reviews, Review{Permission: p, Allowed: res.Status.Allowed, Reason: res.Status.Reason})
	}
	return reviews, nil
}

// SecurityLevel is a namespace's enforced Pod Security Admission level.
type SecurityLevel string

// The levels of Pod Security Admission.
const (
	LevelPrivileged SecurityLevel = "privileged"
	LevelBaseline   SecurityLevel = "baseline"
	LevelRestricted SecurityLevel = "restricted"
)

// EnforceLabel is the namespace label that sets its enforced level.
const EnforceLabel = "pod-security.kubernetes.io/enforce"

// namespaceSecurityLevel reads the enforced level. Without the label (or without permission to read
// namespaces, which many developers lack) the cluster default applies, which is privileged unless
// an admin configured otherwise; the API server's answer to the patch is then the final word.
func namespaceSecurityLevel(ctx context.Context, client kubernetes.Interface, namespace string) (SecurityLevel, error) {
	nl, err := ReadSecurityLevel(ctx, client, namespace)
	return nl.Level, err
}

// NamespaceLevel is a namespace's enforced level and where it comes from, for doctor to show.
type NamespaceLevel struct {
	Level SecurityLevel
	// Labelled: the level is the namespace's label, not the cluster default.
	Labelled bool
	// Unread is why the namespace could not be read; the level is then assumed privileged.
	Unread error
}

// ReadSecurityLevel is namespaceSecurityLevel with where the level comes from.
func ReadSecurityLevel(ctx context.Context, client kubernetes.Interface, namespace string) (NamespaceLevel, error) {
	ns, err := client.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	if err != nil {
		return NamespaceLevel{Level: LevelPrivileged, Unread: err}, nil
	}
	switch level := SecurityLevel(ns.Labels[EnforceLabel]); level {
	case "":
		return NamespaceLevel{Level: LevelPrivileged}, nil
	case LevelPrivileged, LevelBaseline, LevelRestricted:
		return NamespaceLevel{Level: level, Labelled: true}, nil
	default:
		return NamespaceLevel{}, fmt.Errorf("namespace %s has an unknown %s level %q", namespace, EnforceLabel, level)
	}
}
