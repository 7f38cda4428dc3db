// Command mkimage builds the minimal images `make image` ships: each given
// static binary becomes the only file of a single-layer image for its
// platform. It writes a multi-arch OCI image layout and/or a single-platform
// docker-archive tarball for `ctr -n k8s.io images import`, without a Docker
// engine or a registry.
//
// Usage:
//
//	mkimage -ref example.local/remocal-sidecar:dev -entrypoint /remocal-sidecar \
//	    -bin linux/amd64=bin/linux-amd64/remocal-sidecar \
//	    -bin linux/arm64=bin/linux-arm64/remocal-sidecar \
//	    -oci-layout out/layout -tarball out/sidecar.tar
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}
