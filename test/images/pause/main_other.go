//go:build !unix

package main

import (
	"fmt"
	"os"
)

// Reaping zombies needs wait4; the sandbox only ever runs on Linux nodes.
func main() {
	fmt.Fprintln(os.Stderr, "pause: unsupported on this OS")
	os.Exit(1)
}
