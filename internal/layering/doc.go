// Package layering holds the tests that keep the module's layers honest: the sidecar, the layer
// and the shared packages stay free of Kubernetes and cobra, and every package says what it is for.
// It has no code of its own.
package layering
