package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/remocal/kubectl-remocal/internal/environ"
	"github.com/remocal/kubectl-remocal/layer"
	"github.com/remocal/kubectl-remocal/plugin/internal/attach"
	"github.com/remocal/kubectl-remocal/plugin/internal/configfile"
	"github.com/remocal/kubectl-remocal/plugin/internal/progress"
	"github.com/remocal/kubectl-remocal/plugin/internal/usererr"
)

const (
	execLong = `Run a local command as if it were inside a pod's container.

The command runs on this machine with the target container's environment (its
runtime variables, including those from Secrets and ConfigMaps), while a sidecar
added to the pod as an ephemeral container holds an authenticated link back to
this machine. The pod is not restarted. The command's stdin, stdout, stderr,
signals and exit code are its own.

Its connections and DNS lookups go through the pod. When it listens on a TCP
port, it gets a copy of what clients send to the same port of the pod while the
pod's app still answers (mirror); with --steal it answers them instead, or only
the HTTP requests a filter selects (HTTP/1.1 and h2c, gRPC included): each of
--http-header, --http-path, --http-method, --http-query and --http-filter given
must match, and --http-filter combines filters with all-of and any-of. -p LOCAL:REMOTE maps a local port to another pod port. The pod's
ports are given back when the command closes its listener or ends.

TARGET is TYPE/NAME: pod/NAME, deployment/NAME, statefulset/NAME,
replicaset/NAME, daemonset/NAME or job/NAME (a running pod of it).

The TARGET and any flag can also come from .remocal.yaml in the working
directory (or --config FILE, or $REMOCAL_CONFIG); flags given here win. See
'kubectl remocal config --help'.`

	execExample = `  # Run the tests of this repository with the environment of the web deployment's pod
  kubectl remocal exec deployment/web -- go test ./...

  # Print the environment a container of a pod sees
  kubectl remocal exec pod/web-7d9f -c app -- env

  # Write the merged environment to a file for an IDE instead of running a command
  kubectl remocal exec deployment/web --env-file .env.remote

  # Run the server locally; it gets a copy of the pod's port 8080 traffic
  kubectl remocal exec deployment/web -- go run . --port 8080

  # Answer the pod's port 8080 locally, only for requests with X-Dev: alice
  kubectl remocal exec deployment/web --steal --http-header 'X-Dev: alice' -- go run .

  # Only alice's GET requests to /api/, by header or by query parameter
  kubectl remocal exec deployment/web --steal --http-method GET --http-path '^/api/' \
    --http-filter '{any-of: [{header: "X-Dev: ^alice$"}, {query: dev=^alice$}]}' -- go run .`
)

// ExecOptions holds the flags and state of "kubectl remocal exec".
type ExecOptions struct {
	genericiooptions.IOStreams

	attachFlags
	layerOptions
	fsOptions
	EnvInclude []string
	EnvExclude []string
	EnvSet     []string
	EnvFile    string
	// NoFollow ends the session when the target's pod goes away, rather than following a
	// workload target to its next pod.
	NoFollow bool

	// Set by Complete.
	command  []string
	envRules environ.Rules
	attacher *attach.Attacher
}

// NewExecOptions returns the options with their defaults.
func NewExecOptions(configFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *ExecOptions {
	return &ExecOptions{attachFlags: newAttachFlags(configFlags), IOStreams: streams}
}

// NewCmdExec returns "kubectl remocal exec".
func NewCmdExec(configFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewExecOptions(configFlags, streams)
	cmd := &cobra.Command{
		Use:                   "exec TYPE/NAME [-c CONTAINER] [flags] -- COMMAND [args...]",
		DisableFlagsInUseLine: true,
		Short:                 "Run a local command as if it were inside a pod",
		Long:                  execLong,
		Example:               execExample,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.applyConfigFile(cmd); err != nil {
				return err
			}
			if err := o.Complete(cmd, args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return usageError(cmd, err)
			}
			return attach.ExplainMissingFeature(o.Run(cmd.Context()))
		},
	}
	o.AddFlags(cmd)
	configfile.AddFlag(cmd)
	return cmd
}

// AddFlags binds the options to cmd's flags.
func (o *ExecOptions) AddFlags(cmd *cobra.Command) {
	o.attachFlags.AddFlags(cmd)
	o.attachFlags.AddUserLabelFlag(cmd)
	o.layerOptions.AddFlags(cmd)
	o.fsOptions.AddFlags(cmd)
	f := cmd.Flags()
	f.StringArrayVar(&o.EnvInclude, "env-include", nil, "take only remote variables matching this glob (repeatable); the exact NAME of a variable kept local by default (PATH, LD_PRELOAD, GOFLAGS...: see the README) takes the pod's value of that one as well")
	f.StringArrayVar(&o.EnvExclude, "env-exclude", nil, "leave out remote variables matching this glob (repeatable)")
	f.StringArrayVarP(&o.EnvSet, "env", "e", nil, "set KEY=VALUE in the command's environment, over local and remote (repeatable)")
	f.BoolVar(&o.NoFollow, "no-follow", false, "end the session, and the program, when the target's pod goes away, rather than follow a workload target (deployment/NAME...) to the pod kubectl exec would pick next")
	f.StringVar(&o.EnvFile, "env-file", "", "write the remote environment (with -e overrides) to this file as KEY=VALUE lines instead of running a command")
}

// Complete reads the command line and builds the clients.
func (o *ExecOptions) Complete(cmd *cobra.Command, args []string) error {
	dash := cmd.ArgsLenAtDash()
	target := ""
	switch {
	case dash == -1 && len(args) > 0:
		target, o.command = args[0], args[1:]
	case dash > 0:
		target, o.command = args[0], args[dash:]
		if dash > 1 {
			return usageError(cmd, fmt.Errorf("unexpected arguments before --: %s", strings.Join(args[1:dash], " ")))
		}
	case dash == 0:
		o.command = args // the target is the configuration file's
	}
	o.envRules = environ.Rules{Include: o.EnvInclude, Exclude: o.EnvExclude, KeepLocal: environ.DefaultKeepLocal(), Guarded: environ.DefaultGuarded(), Overrides: o.EnvSet}
	o.fsAsked = cmd.Flags().Changed("fs-mode") || cmd.Flags().Changed("fs-remote")
	var err error
	o.attacher, err = o.attachFlags.Complete(target, o.sidecarUse())
	return err
}

// Validate checks the options without I/O.
func (o *ExecOptions) Validate() error {
	if err := o.attachFlags.Validate(); err != nil {
		return err
	}
	if len(o.command) == 0 && o.EnvFile == "" {
		return errors.New("a COMMAND after -- is required (or --env-file)")
	}
	if _, err := newPortChoice(o.PortMap, o.Ports, o.IgnorePorts); err != nil {
		return err
	}
	if err := o.layerOptions.validateIncoming(); err != nil {
		return err
	}
	if err := o.validateFS(); err != nil {
		return err
	}
	return o.envRules.Validate()
}

// sidecarUse is what the session is for: its needs, and --steal, without which it is no use.
func (o *ExecOptions) sidecarUse() attach.Use {
	use := attach.Use{Needs: o.sidecarNeeds()}
	if use.Needs.Redirect {
		use.Steals = "--steal"
	}
	return use
}

// sidecarNeeds is what the incoming-traffic flags ask: a copy of the ports the command listens
// on (mirror, the default), the connections themselves (steal), or nothing (--no-incoming, or
// no command, only --env-file).
func (o *ExecOptions) sidecarNeeds() attach.Needs {
	switch {
	case len(o.command) == 0 || o.NoIncoming:
		return attach.Needs{}
	case o.Steal:
		return attach.Needs{Redirect: true}
	}
	return attach.Needs{Capture: true}
}

// layerAvailable is layer.Available, a variable so tests can play an OS without the layer.
var layerAvailable = layer.Available

// Run attaches to the target and runs the command.
func (o *ExecOptions) Run(ctx context.Context) error {
	if len(o.command) > 0 {
		// Off Linux, refuse before a sidecar is added to the pod for a program that cannot run.
		if err := layerAvailable(); err != nil {
			return usererr.Wrap(err, err.Error())
		}
	}
	p := progress.New(o.ErrOut)
	sess, err := o.attacher.Start(ctx, p)
	if err != nil {
		return err
	}
	remoteEnv, err := o.remoteEnviron(ctx, sess, p)
	if err != nil || len(o.command) == 0 {
		sess.Close()
		return err
	}
	// Ctrl-C cancels ctx, and goes to the program too, which may still use the pod (its
	// connections, its incoming traffic) while it shuts down: what serves the program lives
	// until it ends, not until the signal.
	life, endLife := context.WithCancel(context.WithoutCancel(ctx))
	live, err := o.attacher.Follow(life, p, sess, !o.NoFollow, func(ctx context.Context, s *attach.Session) {
		o.reportChangedEnviron(ctx, p, s, remoteEnv)
	})
	if err != nil {
		endLife()
		sess.Close()
		return err
	}
	// What serves the program ends first, then the session.
	defer live.Close()
	defer endLife()
	sup, err := o.startLayer(ctx, life, live, p)
	if err != nil {
		return err
	}
	defer sup.Close()
	// The pod's variables go to the program alone: what runs outside the layer for it (go
	// run's toolchain) has the local environment and the user's -e.
	cmd, err := sup.Command(o.command, o.envRules.Local(os.Environ()), o.envRules.Remote(remoteEnv))
	if err != nil {
		return err
	}
	p.Done()
	return runLocal(o.IOStreams, cmd, live)
}

// sessionEnd is what ends a session before its program: its pod gone, unfollowed.
type sessionEnd interface {
	Ended() <-chan struct{}
	Err() error
}

// endGrace is how long the program has to end after SIGTERM when its session ended under it.
const endGrace = 10 * time.Second

// remoteEnviron reads the target's environment, names the variables kept local, and writes
// --env-file.
func (o *ExecOptions) remoteEnviron(ctx context.Context, sess *attach.Session, p *progress.Printer) ([]string, error) {
	remoteEnv, err := sess.Environ(ctx)
	if err != nil {
		return nil, err
	}
	if withheld := o.envRules.Withheld(remoteEnv); len(withheld) > 0 {
		p.Step("kept local: %s (--env-include NAME to take one from the pod)", strings.Join(withheld, ", "))
	}
	if o.EnvFile != "" {
		lines := o.envRules.Remote(remoteEnv)
		if err := writeEnvFile(o.EnvFile, lines); err != nil {
			return nil, err
		}
		p.Step("wrote %d variables to %s", len(lines), o.EnvFile)
	}
	return remoteEnv, nil
}

// reportChangedEnviron names the variables the target container has other values of, after a
// restart or in the pod the session moved to, than the program started with (started): a
// running process cannot take a new environment.
func (o *ExecOptions) reportChangedEnviron(ctx context.Context, p *progress.Printer, s *attach.Session, started []string) {
	env, err := s.Environ(ctx)
	if err != nil {
		p.Warn("cannot read the new target container's environment: %v", err)
		return
	}
	if changed := o.envRules.Changed(started, env); len(changed) > 0 {
		p.Warn("the new target container's environment differs in %s; the program keeps the values it started with (run it again to take them)", strings.Join(changed, ", "))
	}
}

// runLocal runs cmd, passing on the signals the plugin receives, and returns the command's exit
// status as an ExitError (0 as nil).
func runLocal(streams genericiooptions.IOStreams, cmd *exec.Cmd, session sessionEnd) error {
	cmd.Stdin, cmd.Stdout, cmd.Stderr = streams.In, streams.Out, streams.ErrOut
	// Signals are passed on explicitly below rather than through CommandContext's kill: Ctrl-C
	// must reach the program as SIGINT, the way it would without remocal, so it can shut down
	// cleanly.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, programSignals...)
	defer signal.Stop(sigs)
	done, err := startHeld(cmd)
	if err != nil {
		return usererr.Wrap(err, fmt.Sprintf("run %s: %v", cmd.Args[0], err))
	}
	for {
		select {
		case s := <-sigs:
			passSignal(cmd.Process, s)
		case err := <-done:
			return exitStatus(err)
		case <-session.Ended():
			// The program runs as if in the pod; with the pod gone, it ends too, as it
			// would there: SIGTERM, then SIGKILL after the grace.
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(endGrace):
				_ = cmd.Process.Kill()
				<-done
			}
			err := session.Err()
			return usererr.Wrap(err, err.Error())
		}
	}
}

// startHeld starts cmd and returns what its Wait will return. The program's parent-death
// signal (the layer sets SIGKILL) fires when the thread that started it ends, not the process
// (go.dev/issue/27505): the starting thread is held until the program has ended, so that the
// signal means what it says.
func startHeld(cmd *exec.Cmd) (<-chan error, error) {
	started, done := make(chan error, 1), make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}

// exitStatus maps how the command ended to the plugin's exit status, as a shell would: its exit
// code, or 128+N when signal N killed it.
func exitStatus(err error) error {
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return err
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return ExitError{Code: 128 + int(ws.Signal())}
	}
	return ExitError{Code: ee.ExitCode()}
}

func writeEnvFile(path string, lines []string) error {
	var b strings.Builder
	for _, l := range lines {
		k, v, _ := strings.Cut(l, "=")
		if strings.ContainsAny(v, "\n\"\\$` ") {
			v = fmt.Sprintf("%q", v)
		}
		fmt.Fprintf(&b, "%s=%s\n", k, v)
	}
	// 0600: the remote environment usually holds secrets.
	return os.WriteFile(path, []byte(b.String()), 0o600)
}
