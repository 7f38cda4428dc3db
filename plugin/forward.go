package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/remocal/kubectl-remocal/pkg/sidecarclient"
	"github.com/remocal/kubectl-remocal/pkg/wire"
	"github.com/remocal/kubectl-remocal/plugin/internal/attach"
	"github.com/remocal/kubectl-remocal/plugin/internal/configfile"
	"github.com/remocal/kubectl-remocal/plugin/internal/incoming"
	"github.com/remocal/kubectl-remocal/plugin/internal/progress"
)

const (
	forwardLong = `Forward local ports to any address the pod can reach, through the sidecar, and
pod ports to local ones.

-L: unlike kubectl port-forward, the destination need not be the pod itself:
HOST may be a cluster DNS name (resolved inside the pod), a Service or pod IP, or
anything the pod can reach. TCP by default; a /udp suffix forwards UDP datagrams
(each local client address is a flow of its own, ended after 2 minutes without
datagrams).

-R: new connections to the pod's REMOTEPORT (by pod IP, Service or Ingress) come
to LOCALPORT on this machine instead of the pod's app, as exec --steal does,
without running a program under remocal. The pod's port is given back when this
command ends, or when nothing listens on LOCALPORT any more.

The TARGET and the flags can also come from .remocal.yaml (-L and -R under its
port-forward key): see 'kubectl remocal config --help'.`

	forwardExample = `  # Reach the orders Service on local port 8080, through the web deployment's pod
  kubectl remocal port-forward deployment/web -L 8080:orders.shop.svc.cluster.local:80

  # Ask the cluster's DNS server from this machine, over UDP
  kubectl remocal port-forward deployment/web -L 5353:kube-dns.kube-system.svc.cluster.local:53/udp

  # Reach a port of the pod's own loopback
  kubectl remocal port-forward pod/web-7d9f -L 127.0.0.1:9000:127.0.0.1:9000

  # Answer the pod's port 8080 with a server already running on local port 3000
  kubectl remocal port-forward deployment/web -R 8080:3000`
)

// forward is one -L rule.
type forward struct {
	network string // "tcp" or "udp"
	listen  string // local host:port
	remote  string // host:port as the pod dials it
}

// parseForward reads [LOCALHOST:]LOCALPORT:HOST:PORT[/tcp|/udp]. HOST may be an IPv6 literal
// in brackets.
func parseForward(spec string) (forward, error) {
	bad := fmt.Errorf("-L %q is not [LOCALHOST:]LOCALPORT:HOST:PORT[/udp]", spec)
	s, network := spec, "tcp"
	if rest, proto, ok := strings.Cut(spec, "/"); ok {
		if proto != "tcp" && proto != "udp" {
			return forward{}, fmt.Errorf("-L %q: the protocol after / is tcp or udp, not %q", spec, proto)
		}
		s, network = rest, proto
	}
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return forward{}, bad
	}
	rest, remotePort := s[:i], s[i+1:]
	j := strings.LastIndex(rest, ":")
	if strings.HasSuffix(rest, "]") {
		j = strings.LastIndex(rest, ":[")
	}
	if j < 0 {
		return forward{}, bad
	}
	local, remoteHost := rest[:j], strings.Trim(rest[j+1:], "[]")
	localHost, localPort := "127.0.0.1", local
	if k := strings.LastIndex(local, ":"); k >= 0 {
		localHost, localPort = strings.Trim(local[:k], "[]"), local[k+1:]
	}
	for _, p := range []string{localPort, remotePort} {
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
			return forward{}, bad
		}
	}
	if remoteHost == "" {
		return forward{}, bad
	}
	return forward{network: network, listen: net.JoinHostPort(localHost, localPort), remote: net.JoinHostPort(remoteHost, remotePort)}, nil
}

// PortForwardOptions holds the flags and state of "kubectl remocal port-forward".
type PortForwardOptions struct {
	attachFlags
	genericiooptions.IOStreams

	Local    []string
	Remote   []string
	forwards []forward
	reverse  []reverseForward
	attacher *attach.Attacher // set by Complete
}

// reverseForward is one -R rule.
type reverseForward struct {
	podPort uint16
	local   netip.AddrPort
}

// parseReverse reads REMOTEPORT:LOCALPORT.
func parseReverse(s string) (reverseForward, error) {
	r, l, ok := strings.Cut(s, ":")
	remote, err1 := parsePort(r)
	local, err2 := parsePort(l)
	if !ok || err1 != nil || err2 != nil {
		return reverseForward{}, fmt.Errorf("-R %q is not REMOTEPORT:LOCALPORT, two ports from 1 to 65535", s)
	}
	return reverseForward{podPort: remote, local: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), local)}, nil
}

// NewCmdPortForward returns "kubectl remocal port-forward".
func NewCmdPortForward(configFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &PortForwardOptions{attachFlags: newAttachFlags(configFlags), IOStreams: streams}
	cmd := &cobra.Command{
		Use:                   "port-forward TYPE/NAME [-L [LOCALHOST:]LOCALPORT:HOST:PORT[/udp]]... [-R REMOTEPORT:LOCALPORT]...",
		DisableFlagsInUseLine: true,
		Short:                 "Forward local ports to addresses the pod can reach",
		Long:                  forwardLong,
		Example:               forwardExample,
		Args:                  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.applyConfigFile(cmd); err != nil {
				return err
			}
			target := "" // the configuration file's
			if len(args) == 1 {
				target = args[0]
			}
			if err := o.Complete(target); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return usageError(cmd, err)
			}
			return attach.ExplainMissingFeature(o.Run(cmd.Context()))
		},
	}
	o.attachFlags.AddFlags(cmd)
	o.attachFlags.AddUserLabelFlag(cmd)
	cmd.Flags().StringArrayVarP(&o.Local, "local", "L", nil, "forward [LOCALHOST:]LOCALPORT to HOST:PORT as seen from the pod; /udp for UDP (repeatable)")
	cmd.Flags().StringArrayVarP(&o.Remote, "remote", "R", nil, "REMOTEPORT:LOCALPORT: new connections to the pod's REMOTEPORT come to this machine's LOCALPORT (repeatable)")
	configfile.AddFlag(cmd)
	return cmd
}

// Complete builds the attacher for target ("" is the configuration file's). -R steals the
// pod's ports: the sidecar needs to redirect them, and without that -R is no use.
func (o *PortForwardOptions) Complete(target string) error {
	use := attach.Use{}
	if len(o.Remote) > 0 {
		use = attach.Use{Needs: attach.Needs{Redirect: true}, Steals: "-R"}
	}
	var err error
	o.attacher, err = o.attachFlags.Complete(target, use)
	return err
}

// Validate checks the flags without I/O.
func (o *PortForwardOptions) Validate() error {
	if err := o.attachFlags.Validate(); err != nil {
		return err
	}
	if len(o.Local) == 0 && len(o.Remote) == 0 {
		return errors.New("at least one -L or -R is required")
	}
	o.reverse = o.reverse[:0]
	for _, r := range o.Remote {
		rf, err := parseReverse(r)
		if err != nil {
			return err
		}
		o.reverse = append(o.reverse, rf)
	}
	o.forwards = o.forwards[:0]
	for _, l := range o.Local {
		f, err := parseForward(l)
		if err != nil {
			return err
		}
		o.forwards = append(o.forwards, f)
	}
	return nil
}

// Run forwards until ctx is done (Ctrl-C) or the link fails.
func (o *PortForwardOptions) Run(ctx context.Context) error {
	p := progress.New(o.ErrOut)
	sess, err := o.attacher.Start(ctx, p)
	if err != nil {
		return err
	}
	defer sess.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var listeners []io.Closer
	for _, f := range o.forwards {
		if f.network == "udp" {
			pc, err := net.ListenPacket("udp", f.listen)
			if err != nil {
				return fmt.Errorf("listen on %s/udp: %w", f.listen, err)
			}
			listeners = append(listeners, pc)
			fmt.Fprintf(o.Out, "Forwarding from %s/udp -> %s/udp\n", pc.LocalAddr(), f.remote)
			wg.Add(1)
			go func() {
				defer wg.Done()
				serveForwardUDP(ctx, sess, pc.(*net.UDPConn), f.remote, o.ErrOut)
			}()
			continue
		}
		ln, err := net.Listen("tcp", f.listen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", f.listen, err)
		}
		listeners = append(listeners, ln)
		fmt.Fprintf(o.Out, "Forwarding from %s -> %s\n", ln.Addr(), f.remote)
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveForward(ctx, sess, ln, f.remote, o.ErrOut)
		}()
	}
	if len(o.reverse) > 0 {
		// Until the session closes, which gives the ports back: ctx ends first, on Ctrl-C.
		life, endLife := context.WithCancel(context.WithoutCancel(ctx))
		defer endLife()
		router := incoming.NewRouter(sess, p, portChoice{}.remote, sidecarclient.Subscription{Mode: wire.ModeSteal})
		go router.Serve(life)
		go router.Watch(life)
		for _, r := range o.reverse {
			router.Take(ctx, r.podPort, r.local)
		}
	}
	select {
	case <-ctx.Done():
	case <-sess.Done():
		err = fmt.Errorf("the link to the sidecar ended: %w", sess.Err())
		if errors.Is(err, sidecarclient.ErrMaxLifetime) {
			err = ExitError{Code: 1} // the session said why, in its one line
		}
	}
	for _, ln := range listeners {
		ln.Close()
	}
	return err
}

func serveForward(ctx context.Context, sess *attach.Session, ln net.Listener, remote string, errOut io.Writer) {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		local, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer local.Close()
			stream, err := sess.Dial(ctx, "tcp", remote, 10*time.Second)
			if err != nil {
				fmt.Fprintf(errOut, "remocal: forward to %s: %v\n", remote, err)
				return
			}
			incoming.Relay(stream, local.(*net.TCPConn))
		}()
	}
}
