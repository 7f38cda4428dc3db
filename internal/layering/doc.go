// Package layering holds the tests that keep the module's layers honest: which top-level
// directory may import which (the allowed-imports matrix), the sidecar, the layer and the shared
// packages free of Kubernetes and cobra, contexts that come from the caller rather than begin
// below a main or live in a struct, and every package saying what it is for. It has no code of
// its own.
package layering
