package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
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
	var missing []string
	for _, p := range sessionPermissions {
		review := &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace:   namespace,
					Verb:        p.verb,
					Resource:    p.resource,
					Subresource: p.subresource,
				},
			},
		}
		res, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("check RBAC permissions: %w", err)
		}
		if !res.Status.Allowed {
			missing = append(missing, fmt.Sprintf("%s %s/%s (%s)", p.verb, p.resource, p.subresource, p.why))
		}
	}
	if len(missing) > 0 {
		return &userError{
			msg: fmt.Sprintf("missing RBAC permission in namespace %s: %s; ask a cluster admin for a Role granting it",
				namespace, strings.Join(missing, "; ")),
		}
	}
	return nil
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
	ns, err := client.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	if err != nil {
		return psaPrivileged, nil
	}
	switch level := podSecurityLevel(ns.Labels[psaEnforceLabel]); level {
	case "", psaPrivileged:
		return psaPrivileged, nil
	case psaBaseline, psaRestricted:
		return level, nil
	default:
		return "", fmt.Errorf("namespace %s has an unknown %s level %q", namespace, psaEnforceLabel, level)
	}
}

// userError is a failure whose message is already what the user should read: one line, what went
// wrong and what to do. The cause, if any, is shown with -v.
type userError struct {
	msg   string
	cause error
}

func (e *userError) Error() string { return e.msg }
func (e *userError) Unwrap() error { return e.cause }

func isUserError(err error) bool {
	var u *userError
	return errors.As(err, &u)
}
