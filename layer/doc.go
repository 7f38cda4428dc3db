// Package layer will intercept the user's local process: a seccomp user notification supervisor
// that traps connect, bind, listen and file opens and serves them through the sidecar. It is
// implemented in a later change.
//
// Like the sidecar, it imports no k8s.io package and no cobra.
package layer
