// Package sidecar is the agent that the plugin adds to a target pod as an ephemeral container.
//
// For now it only starts, logs its identity and exits: the QUIC server, the outgoing dialer, the
// redirect rules and the env/file readers come in later changes. No client can connect yet, so Run
// always ends when its context is cancelled or when the TTL passes, whichever comes first.
//
// The sidecar must stay a small static binary: it imports no k8s.io package and no cobra.
package sidecar

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/remocal/kubectl-remocal/pkg/version"
)

// DefaultTTL is how long a sidecar waits for a client. Ephemeral containers can never be removed, so
// a sidecar nobody uses must end by itself.
const DefaultTTL = 10 * time.Minute

// Config is the sidecar's checked configuration, built once from its command line.
type Config struct {
	// TTL is how long the sidecar runs without a client before it exits.
	TTL time.Duration
}

// NewConfig returns the configuration used when no flag is given.
func NewConfig() Config {
	return Config{TTL: DefaultTTL}
}

// AddFlags binds the configuration to the sidecar's command-line flags.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.TTL, "ttl", c.TTL, "exit after this long without a client")
}

// Validate reports a configuration that Run cannot honour.
func (c Config) Validate() error {
	if c.TTL <= 0 {
		return fmt.Errorf("--ttl must be positive, got %s", c.TTL)
	}
	return nil
}

// Run runs the sidecar until ctx is done or until TTL passes without a client. Both are normal ends
// and return nil: the container's exit code only reports failures.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	v := version.Get()
	logger.InfoContext(ctx, "sidecar started",
		"version", v.Version,
		"commit", v.Commit,
		"goVersion", v.GoVersion,
		"platform", v.Platform,
		"ttl", cfg.TTL.String(),
	)

	ttl := time.NewTimer(cfg.TTL)
	defer ttl.Stop()
	select {
	case <-ctx.Done():
		// The cause names the signal when signal.NotifyContext ended the run.
		logger.InfoContext(ctx, "sidecar stopping", "reason", context.Cause(ctx).Error())
		return nil
	case <-ttl.C:
		logger.InfoContext(ctx, "sidecar stopping", "reason", "no client within ttl", "ttl", cfg.TTL.String())
		return nil
	}
}
