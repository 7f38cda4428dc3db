package plugin

import (
	"context"
	"fmt"

	"k8s.io/client-go/discovery"

	"github.com/remocal/kubectl-remocal/plugin/internal/attach"
)

// doctorPermission is a permission doctor asks about, and whether exec fails without it.
type doctorPermission struct {
	attach.Permission
	required bool
}

// doctorPermissions are the session's own checks (attach.SessionPermissions, which exec reviews
// before it adds a sidecar), what it cannot find the target without, and what makes it better.
func doctorPermissions() []doctorPermission {
	var perms []doctorPermission
	for _, p := range attach.SessionPermissions() {
		perms = append(perms, doctorPermission{p, true})
	}
	return append(perms,
		doctorPermission{attach.Permission{Verb: "get", Resource: "pods", Why: "to find the target pod"}, true},
		doctorPermission{attach.Permission{Verb: "list", Resource: "events", Why: "to see at once that the sidecar cannot start (a failed image pull), not at the kubelet's next status sync 10 s or more later"}, false},
		doctorPermission{attach.Permission{Verb: "get", Resource: "namespaces", Why: "to read the namespace's Pod Security level; without it remocal assumes privileged"}, false},
	)
}

// clusterChecks are the rows about the cluster, and with a TARGET about the pod, its sidecar
// and the link. An API server that does not answer is one row: nothing else can be checked.
func (o *DoctorOptions) clusterChecks(ctx context.Context) []check {
	api, dc := o.apiServerCheck(ctx)
	if api.Status == statusFail {
		return []check{api}
	}
	checks := []check{api, ephemeralContainersCheck(ctx, dc)}
	checks = append(checks, o.permissionChecks(ctx)...)

	var t *attach.Target
	if o.targetRef == "" {
		checks = append(checks, check{Name: "target", Status: statusSkip, Detail: "no TARGET: give one (e.g. deployment/web) to check its pod, the sidecar image, the link and the environment"})
	} else {
		var row check
		t, row = o.targetCheck(ctx)
		checks = append(checks, row)
	}
	checks = append(checks, o.securityLevelChecks(ctx, t)...)
	if t != nil {
		checks = append(checks, o.sidecarChecks(ctx, t)...)
	}
	return checks
}

// apiServerCheck asks the API server for its version, the first request of the run: it tells
// whether the cluster answers at all.
func (o *DoctorOptions) apiServerCheck(ctx context.Context) (check, *discovery.DiscoveryClient) {
	c := check{Name: "api server", Status: statusFail}
	if o.clientErr != nil {
		c.Detail = fmt.Sprintf("no cluster to talk to: %v", o.clientErr)
		c.Fix = "check KUBECONFIG, --kubeconfig and --context (kubectl config current-context)"
		return c, nil
	}
	rc := o.attacher.RESTConfig
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		c.Detail = fmt.Sprintf("create a client for %s: %v", rc.Host, err)
		c.Fix = "check the cluster entry of the kubeconfig"
		return c, nil
	}
	ctx, cancel := bounded(ctx)
	defer cancel()
	info, err := dc.ServerVersionWithContext(ctx)
	if err != nil {
		c.Detail = describeServerError(err, rc.Host, checkTimeout)
		c.Fix = "check that the cluster runs and that this machine reaches it (kubectl version); the other checks need it"
		return c, nil
	}
	c.Status = statusOK
	c.Detail = fmt.Sprintf("%s answers: Kubernetes %s", rc.Host, info.GitVersion)
	return c, dc
}

// ephemeralContainersCheck looks for the subresource that exec adds its sidecar through.
func ephemeralContainersCheck(ctx context.Context, dc *discovery.DiscoveryClient) check {
	c := check{Name: "ephemeral containers"}
	ctx, cancel := bounded(ctx)
	defer cancel()
	list, err := dc.ServerResourcesForGroupVersionWithContext(ctx, "v1")
	if err != nil {
		c.Status, c.Detail = statusFail, fmt.Sprintf("list the API's core resources: %v", err)
		c.Fix = "check the API server's health (kubectl get --raw /api/v1)"
		return c
	}
	for _, r := range list.APIResources {
		if r.Name == "pods/ephemeralcontainers" {
			c.Status, c.Detail = statusOK, "the API serves pods/ephemeralcontainers"
			return c
		}
	}
	c.Status, c.Detail = statusFail, "the API does not serve pods/ephemeralcontainers: ephemeral containers are disabled in this cluster"
	c.Fix = "remocal needs Kubernetes 1.25 or later (or the EphemeralContainers feature gate on 1.23 and 1.24)"
	return c
}

// permissionChecks reviews doctorPermissions in the namespace, a row each.
func (o *DoctorOptions) permissionChecks(ctx context.Context) []check {
	perms := doctorPermissions()
	plain := make([]attach.Permission, len(perms))
	for i, p := range perms {
		plain[i] = p.Permission
	}
	ns := o.attacher.Namespace
	ctx, cancel := bounded(ctx)
	defer cancel()
	reviews, err := attach.ReviewPermissions(ctx, o.attacher.Client, ns, plain)
	if err != nil {
		return []check{{Name: "rbac", Status: statusFail, Detail: err.Error(),
			Fix: "exec makes the same SelfSubjectAccessReviews; every authenticated user may normally make them"}}
	}
	checks := make([]check, len(reviews))
	for i, r := range reviews {
		c := check{Name: "rbac " + r.Permission.String(), Status: statusOK, Detail: fmt.Sprintf("allowed in namespace %s", ns)}
		if !r.Allowed {
			c.Status = statusWarn
			if perms[i].required {
				c.Status = statusFail
			}
			c.Detail = fmt.Sprintf("denied in namespace %s; needed %s", ns, r.Why)
			if r.Reason != "" {
				c.Detail = fmt.Sprintf("denied in namespace %s (%s); needed %s", ns, r.Reason, r.Why)
			}
			c.Fix = fmt.Sprintf("ask a cluster admin for a Role granting %s in namespace %s", r.Permission, ns)
		}
		checks[i] = c
	}
	return checks
}

// securityLevelChecks reads the namespace's Pod Security level as exec does and says what it
// allows, for t's user when there is a target.
func (o *DoctorOptions) securityLevelChecks(ctx context.Context, t *attach.Target) []check {
	if c, out := timeLeft(ctx, "pod security"); out {
		return []check{c}
	}
	ns := o.attacher.Namespace
	ctx, cancel := bounded(ctx)
	defer cancel()
	nl, err := attach.ReadSecurityLevel(ctx, o.attacher.Client, ns)
	if err != nil {
		return []check{{Name: "pod security", Status: statusFail, Detail: err.Error(),
			Fix: fmt.Sprintf("the level must be privileged, baseline or restricted: ask an admin to correct the %s label", attach.EnforceLabel)}}
	}
	var user *int64
	if t != nil {
		user = t.RunAsUser()
	}
	return securityChecks(ns, nl, t != nil, user)
}
