// Package sidecarclient is the client of the sidecar's QUIC protocol (pkg/wire), the mirror of
// sidecar/server.go: a Session is one authenticated connection to a sidecar, with its control
// stream open, and a method per request the sidecar serves.
//
//   - On the control stream, one request at a time, each with its reply or replies: the
//     target container's name (NameTarget), its environment (Environ), a file read whole
//     (ReadFile), the pod ports this session takes (Subscribe, Unsubscribe), and the listings
//     of ls and clean (Subscriptions, Redirects).
//   - On a stream of its own each: a connection dialled from the pod (Dial), a filesystem
//     operation (Lstat, ReadDir, WriteFile...), and each connection that reached a subscribed
//     port, which the sidecar opens (ServeIncoming).
//
// How the QUIC connection is made (UDP to the pod IP, or a Kubernetes port-forward) is the
// caller's: New takes the connection. The package knows nothing of Kubernetes or of the
// command line: a refusal is a typed error (FeatureError, RefusedError, ErrMaxLifetime), which
// the caller words for its user.
package sidecarclient
