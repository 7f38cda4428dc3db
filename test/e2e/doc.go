// Package e2e holds the end-to-end tests: they run against the cluster named by KUBECONFIG (the
// local test cluster of `make cluster-up`, or any other) and are skipped under -short or without
// a cluster. They check the real system: real ephemeral containers, a real pod network namespace,
// real port-forwarding, real cluster DNS and Services.
package e2e
