// Command mkdist packs the plugin's release archives for `make dist` and writes the krew
// manifest that installs them: one archive per -bin platform (tar.gz, or zip for windows, as
// krew expects), each with the binary and the -file extras at its root, a sha256sum-style
// ARCHIVE.sha256 beside it, and the manifest rendered from -template with each archive's URI
// (-base-url/ARCHIVE) and sha256.
//
// Archives are reproducible: entries are sorted, owned by root and dated -mtime, so the same
// binaries always give the same sums.
//
// Usage:
//
//	mkdist -version v0.1.0 -out bin/dist \
//	    -base-url https://github.com/remocal/kubectl-remocal/releases/download/v0.1.0 \
//	    -bin linux/amd64=bin/dist/build/linux-amd64/kubectl-remocal \
//	    -bin windows/amd64=bin/dist/build/windows-amd64/kubectl-remocal.exe \
//	    -unix-file scripts/kubectl_complete-remocal \
//	    -template krew/remocal.yaml.tmpl -manifest krew/remocal.yaml
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
		fmt.Fprintln(os.Stderr, "mkdist:", err)
		os.Exit(1)
	}
}
