// Command remocal-sidecar is the agent that kubectl remocal adds to a pod as an ephemeral container.
// It is built as a static binary (CGO_ENABLED=0) for the sidecar image; the work is in package
// sidecar.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/remocal/kubectl-remocal/pkg/sidecarapi"
	"github.com/remocal/kubectl-remocal/pkg/version"
	"github.com/remocal/kubectl-remocal/sidecar"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == sidecar.OwnerOpenerArg {
		// A short-lived child of the sidecar, running as the target's user.
		os.Exit(sidecar.RunOwnerOpener(os.Args[2:]))
	}
	os.Exit(run())
}

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg := sidecar.NewConfig()
	fs := flag.NewFlagSet("remocal-sidecar", flag.ContinueOnError)
	printVersion := fs.Bool("version", false, "print the version as JSON and exit")
	worker := fs.Bool(strings.TrimPrefix(sidecar.WorkerFlag, "--"), false, "do the work (set by the guard process for its child)")
	cfg.AddFlags(fs)
	args, unknown := sidecarapi.SplitUnknownFlags(fs, os.Args[1:])
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		// flag has already printed the error and the usage.
		return 2
	}
	if *printVersion {
		b, err := json.Marshal(version.Get())
		if err != nil {
			fmt.Fprintf(os.Stderr, "error: %v\n", err)
			return 1
		}
		fmt.Println(string(b))
		return 0
	}

	// JSON on stderr: the plugin reads the sidecar's log through the pod log API.
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if !*worker {
		if err := cfg.Validate(); err != nil {
			logger.Error("sidecar failed", "err", err.Error())
			return 1
		}
		return sidecar.Guard(ctx, os.Args[1:], logger)
	}
	cfg.IgnoredFlags = unknown
	if err := sidecar.Run(ctx, cfg, logger); err != nil {
		logger.Error("sidecar failed", "err", err.Error())
		return 1
	}
	return 0
}
