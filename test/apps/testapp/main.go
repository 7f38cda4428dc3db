// Command testapp is the workload of the end-to-end tests: one static binary
// (CGO_ENABLED=0) whose first argument picks what it does, so the test
// cluster needs a single image for every scenario.
//
//	testapp http [-addr :8080]  HTTP server answering every request with a JSON echo of it; GET /healthz is "ok"
//	testapp tcp  [-addr :9000]  TCP echo
//	testapp udp  [-addr :9001]  UDP echo
//	testapp ifaces              print each network interface and its addresses, then exit
//	testapp sleep               block until SIGTERM or SIGINT
//	testapp ls DIR              print the names in DIR, sorted, dot-files included
//	testapp cat FILE            print the content of FILE
//
// Servers stop gracefully on SIGTERM or SIGINT and exit 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	err := run(ctx, os.Args[1:], log)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "testapp:", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "testapp:", err)
		os.Exit(1)
	}
}
