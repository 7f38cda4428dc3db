package sidecar

import (
	"slices"

	"golang.org/x/sys/unix"

	"github.com/remocal/kubectl-remocal/pkg/sidecarapi"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// canRedirect tells whether the sidecar holds CAP_NET_ADMIN, which every nftables change
// needs: without it (Pod Security baseline or restricted, or a runtime that took it away) no
// port can be stolen. When the kernel does not say, the answer is yes, and a subscription
// fails with the kernel's reason as before.
func canRedirect() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData // the 64 capability bits, in two halves
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return true
	}
	return data[0].Effective&(1<<unix.CAP_NET_ADMIN) != 0
}

// offeredFeatures are what the sidecar offers in its hello reply: this version's features,
// with wire.FeatureNoRedirect only when it cannot redirect, so that a plugin refuses a steal
// at once rather than when its program listens.
func offeredFeatures(redirect bool) []string {
	return slices.DeleteFunc(sidecarapi.Features(), func(f string) bool {
		return f == wire.FeatureNoRedirect && redirect
	})
}
