package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
)

// errUsage marks command-line mistakes, which exit 2 like flag's own.
var errUsage = errors.New("usage: testapp http|tcp|udp|grpc|ifaces|sleep [-addr ADDR] [-name NAME] | testapp ls DIR | testapp cat FILE")

// run dispatches on the mode in args[0] and blocks until the mode is done or
// ctx is cancelled.
func run(ctx context.Context, args []string, log *slog.Logger) error {
	if len(args) == 0 {
		return errUsage
	}
	mode, args := args[0], args[1:]
	// The pod's side of the remote-files tests: the image has no shell or coreutils.
	switch mode {
	case "ls":
		if len(args) != 1 {
			return errUsage
		}
		return listDir(os.Stdout, args[0])
	case "cat":
		if len(args) != 1 {
			return errUsage
		}
		b, err := os.ReadFile(args[0])
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(b)
		return err
	}
	fs := flag.NewFlagSet("testapp "+mode, flag.ContinueOnError)
	var addr, name string
	switch mode {
	case "http":
		fs.StringVar(&addr, "addr", ":8080", "TCP address to serve HTTP on")
	case "tcp":
		fs.StringVar(&addr, "addr", ":9000", "TCP address to echo on")
	case "udp":
		fs.StringVar(&addr, "addr", ":9001", "UDP address to echo on")
	case "grpc":
		fs.StringVar(&addr, "addr", ":9002", "TCP address to serve gRPC health on (h2c)")
		fs.StringVar(&name, "name", "app", "the one service name reported SERVING")
	case "ifaces", "sleep":
	default:
		return fmt.Errorf("unknown mode %q: %w", mode, errUsage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: %w", fs.Args(), errUsage)
	}

	switch mode {
	case "http":
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		log.Info("serving http", "addr", ln.Addr().String())
		return serveHTTP(ctx, ln, log)
	case "tcp":
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		log.Info("serving tcp echo", "addr", ln.Addr().String())
		return serveTCP(ctx, ln, log)
	case "udp":
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		log.Info("serving udp echo", "addr", pc.LocalAddr().String())
		return serveUDP(ctx, pc, log)
	case "grpc":
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		return serveGRPC(ctx, ln, name, log)
	case "ifaces":
		ifs, err := listInterfaces()
		if err != nil {
			return err
		}
		return writeInterfaces(os.Stdout, ifs)
	default: // sleep
		<-ctx.Done()
		log.Info("stopping", "cause", context.Cause(ctx))
		return nil
	}
}
