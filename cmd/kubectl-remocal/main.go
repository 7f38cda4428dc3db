// Command kubectl-remocal is the kubectl plugin: kubectl finds it on PATH and runs it for
// "kubectl remocal ...". The commands live in package plugin.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/klog/v2"

	"github.com/remocal/kubectl-remocal/layer"
	"github.com/remocal/kubectl-remocal/plugin"
)

func main() {
	// The plugin's executable is also the layer's helper, which must run before anything else
	// (no flags, no clients) and then becomes the user's program.
	if len(os.Args) > 1 && os.Args[1] == layer.HelperArg {
		os.Exit(layer.HelperMain(os.Args[2:]))
	}
	os.Exit(run())
}

func run() int {
	defer klog.Flush()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	err := plugin.NewCmdRemocal(streams).ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	// The user's program has already reported its own failure; pass on only its status.
	var exitErr plugin.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.Code
	}
	fmt.Fprintf(os.Stderr, "error: %v\n", err)
	// Errors show one line; -v=1 adds the wrapped causes that the line left out.
	if klog.V(1).Enabled() {
		shown := err.Error()
		for cause := errors.Unwrap(err); cause != nil; cause = errors.Unwrap(cause) {
			if msg := cause.Error(); !strings.Contains(shown, msg) {
				fmt.Fprintf(os.Stderr, "  caused by: %s\n", msg)
				shown = msg
			}
		}
	}
	return 1
}
