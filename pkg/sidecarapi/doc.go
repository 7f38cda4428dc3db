// Package sidecarapi is the contract between the plugin and the sidecar binary that is not the
// wire protocol: how the plugin starts a sidecar and what the sidecar says when it has started.
// The two are separate binaries, released together but often run at different versions (a
// sidecar of last week's plugin is reused by today's), so each piece has one definition here,
// which both import:
//
//   - the sidecar's command line ([Flags]): the plugin writes it ([Flags.Args]) into the
//     ephemeral container's spec, the sidecar parses it ([Flags.AddFlags]), and the plugin reads
//     it back from a running sidecar's spec ([ParseArgs]) to decide whether to reuse it;
//   - the sidecar's first log line ([StartLine]), which carries the fingerprint of its key for
//     the plugin to pin;
//   - the wire features both ends speak ([Features]) and the defaults they share
//     ([DialTimeout]).
//
// It is light: the sidecar is a small static binary, so this package imports no k8s.io package
// and nothing of the plugin, the sidecar or the layer.
package sidecarapi
