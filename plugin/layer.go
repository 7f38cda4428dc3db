package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/remocal/kubectl-remocal/layer"
	"github.com/remocal/kubectl-remocal/pkg/sidecarapi"
	"github.com/remocal/kubectl-remocal/pkg/sidecarclient"
	"github.com/remocal/kubectl-remocal/pkg/wire"
	"github.com/remocal/kubectl-remocal/plugin/internal/attach"
	"github.com/remocal/kubectl-remocal/plugin/internal/incoming"
	"github.com/remocal/kubectl-remocal/plugin/internal/progress"
	"github.com/remocal/kubectl-remocal/plugin/internal/usererr"
)

// layerOptions choose what the layer sends through the pod.
type layerOptions struct {
	Local       []string
	NoOutgoing  bool
	NoIncoming  bool
	Steal       bool
	HTTPHeader  string
	HTTPPath    string
	HTTPMethod  string
	HTTPQuery   []string
	HTTPFilter  string
	PortMap     []string
	Ports       []string
	IgnorePorts []string
}

func (o *layerOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&o.Local, "local", nil, "keep connections to this CIDR, IP or HOST:PORT on this machine instead of making them from the pod (repeatable)")
	f.BoolVar(&o.NoOutgoing, "no-outgoing", false, "make every outgoing connection and DNS lookup from this machine, not from the pod")
	f.BoolVar(&o.NoIncoming, "no-incoming", false, "leave the pod's incoming traffic alone: neither mirror nor steal the ports the command listens on")
	f.BoolVar(&o.Steal, "steal", false, "when the command listens on a TCP port, new connections to the same port of the pod come to it instead of the pod's app (default: it gets a copy of them, the mirror, while the pod's app answers)")
	f.StringVar(&o.HTTPHeader, "http-header", "", "with --steal, take only the HTTP requests with this header, 'Name: regex'; the others go to the pod's app on the same connection")
	f.StringVar(&o.HTTPPath, "http-path", "", "with --steal, take only the HTTP requests whose path matches this regex; the others go to the pod's app")
	f.StringVar(&o.HTTPMethod, "http-method", "", "with --steal, take only the HTTP requests of these methods, e.g. GET,HEAD (case ignored)")
	f.StringArrayVar(&o.HTTPQuery, "http-query", nil, "with --steal, take only the HTTP requests with this query parameter, 'name=regex' on its decoded value (repeatable: each must match)")
	f.StringVar(&o.HTTPFilter, "http-filter", "", "with --steal, take only the HTTP requests this filter selects, in YAML: header, path, method, query, and all-of or any-of lists of filters, e.g. '{any-of: [{header: \"X-Dev: alice\"}, {query: dev=alice}]}'")
	f.StringArrayVarP(&o.PortMap, "port-map", "p", nil, "LOCAL:REMOTE: the command's listening port LOCAL takes the pod's port REMOTE (repeatable)")
	f.StringArrayVar(&o.Ports, "ports", nil, "take only these of the command's listening ports (comma-separated, repeatable)")
	f.StringArrayVar(&o.IgnorePorts, "ignore-ports", nil, "never take these of the command's listening ports (comma-separated, repeatable)")
}

// subscription is what the flags ask of the pod ports the program listens on. It fails only
// on what validateIncoming refuses.
func (o *layerOptions) subscription() (sidecarclient.Subscription, error) {
	if !o.Steal {
		return sidecarclient.Subscription{Mode: wire.ModeMirror}, nil
	}
	tree, err := o.filterTree()
	return sidecarclient.Subscription{Mode: wire.ModeSteal, Header: o.HTTPHeader, Path: o.HTTPPath, Filter: tree}, err
}

// validateIncoming checks that the incoming-traffic flags agree and that the filters parse.
func (o *layerOptions) validateIncoming() error {
	switch {
	case o.Steal && o.NoIncoming:
		return errors.New("--steal and --no-incoming contradict each other: pick one")
	case o.filterFlag() != "" && !o.Steal:
		return fmt.Errorf("%s chooses which requests to steal: add --steal", o.filterFlag())
	}
	return o.validateFilter()
}

// outgoing turns the flags into the layer's filter.
func (o *layerOptions) outgoing(ctx context.Context) (layer.Outgoing, error) {
	out := layer.Outgoing{Off: o.NoOutgoing}
	for _, spec := range o.Local {
		if err := out.AddLocal(ctx, spec); err != nil {
			return layer.Outgoing{}, err
		}
	}
	return out, nil
}

// startLayer prepares the supervisor that runs the command with the pod's network and DNS.
// ctx bounds the set-up; life is the session's, which goes on until the program ends.
func (o *ExecOptions) startLayer(ctx, life context.Context, sess *attach.Live, p *progress.Printer) (*layer.Supervisor, error) {
	outgoing, err := o.layerOptions.outgoing(ctx)
	if err != nil {
		return nil, err
	}
	cfg := layer.Config{
		Outgoing: outgoing,
		Log:      slog.New(logr.ToSlogHandler(klog.Background().WithName("layer"))),
		OnListen: func(ev layer.ListenEvent) {
			klog.V(1).InfoS("the program listens", "pid", ev.PID, "address", ev.Addr)
		},
	}
	var router *incoming.Router
	if !o.NoIncoming {
		choice, err := newPortChoice(o.PortMap, o.Ports, o.IgnorePorts)
		if err != nil {
			return nil, err
		}
		sub, err := o.subscription()
		if err != nil {
			return nil, err
		}
		// A sidecar too old for the filter would take no port at all: refuse before the
		// command runs rather than warn at each port.
		if sub.Filter != nil {
			if err := sess.Session().CanSubscribe(sub); err != nil {
				return nil, attach.ExplainMissingFeature(err)
			}
		}
		router = incoming.NewRouter(sess, p, choice.remote, sub)
		cfg.OnListen = func(ev layer.ListenEvent) {
			klog.V(1).InfoS("the program listens", "pid", ev.PID, "address", ev.Addr)
			router.Listen(life, ev)
		}
	}
	if !outgoing.Off {
		cfg.Dial = dialThrough(sess)
		if cfg.Files, err = podDNSFiles(ctx, sess); err != nil {
			return nil, err
		}
	}
	if err := o.addRemoteFiles(ctx, sess, p, &cfg); err != nil {
		return nil, err
	}
	sup, err := layer.New(cfg)
	if fix := filesUnavailable(err); fix != "" && !o.fsAsked && len(cfg.Hidden) == 0 {
		// The pod's files are the default, not a request: run with local files, and say so.
		p.Warn("the pod's files stay local: %v (%s; --fs-mode local silences this)", err, fix)
		cfg.Mounts = nil
		sup, err = layer.New(cfg)
	}
	if fix := filesUnavailable(err); fix != "" {
		return nil, usererr.Wrap(err, fmt.Sprintf("cannot show the pod's files: %v (%s), or pass --fs-mode local", err, fix))
	}
	if err != nil {
		return nil, usererr.Wrap(err, "cannot run the command under the layer: "+err.Error())
	}
	o.reportRemoteFiles(p, cfg.Mounts)
	if router != nil {
		router.SetArrivals(sup) // before the router handles a connection: the layer reports its client
		go router.Serve(life)
		go router.Watch(life)
	}
	if !outgoing.Off {
		p.Step("outgoing connections and DNS go through the pod")
	}
	return sup, nil
}

// filesUnavailable returns the fix for a layer that cannot show remote files on this machine,
// or "" for any other outcome.
func filesUnavailable(err error) string {
	switch {
	case errors.Is(err, layer.ErrNoFUSE):
		return "most distributions make /dev/fuse mode 0666: sudo chmod 0666 /dev/fuse"
	case errors.Is(err, layer.ErrNoUserNamespaces):
		return "allow unprivileged user namespaces, e.g. sudo sysctl kernel.unprivileged_userns_clone=1"
	}
	return ""
}

// podDNSFiles are the files that make the program resolve names as the pod does: its
// resolv.conf, told to ask over TCP (which the layer carries to the cluster DNS; UDP to the
// nameserver would work too, but TCP needs no datagram path), its hosts, and an nsswitch.conf
// that asks files then DNS, whatever this machine's says (systemd-resolved or mDNS would
// answer locally).
func podDNSFiles(ctx context.Context, sess *attach.Live) (map[string][]byte, error) {
	files := map[string][]byte{}
	resolv, err := sess.ReadFile(ctx, "/etc/resolv.conf")
	if err != nil {
		return nil, fmt.Errorf("read the pod's /etc/resolv.conf: %w", err)
	}
	files["/etc/resolv.conf"] = append(bytes.TrimRight(resolv, "\n"), []byte("\noptions use-vc\n")...)
	hosts, err := sess.ReadFile(ctx, "/etc/hosts")
	switch {
	case err == nil:
		files["/etc/hosts"] = hosts
	case errors.Is(err, syscall.ENOENT):
	default:
		return nil, fmt.Errorf("read the pod's /etc/hosts: %w", err)
	}
	files["/etc/nsswitch.conf"] = nsswitchFilesDNS(readOptional("/etc/nsswitch.conf"))
	return files, nil
}

// nsswitchFilesDNS returns conf with its hosts line replaced by "hosts: files dns".
func nsswitchFilesDNS(conf []byte) []byte {
	var out []string
	for _, line := range strings.Split(strings.TrimRight(string(conf), "\n"), "\n") {
		if fields := strings.Fields(line); len(fields) > 0 && fields[0] == "hosts:" {
			continue
		}
		if line != "" {
			out = append(out, line)
		}
	}
	out = append(out, "hosts: files dns")
	return []byte(strings.Join(out, "\n") + "\n")
}

func readOptional(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}

// dialThrough carries the program's connections through the sidecar of sess.
func dialThrough(sess *attach.Live) layer.DialFunc {
	return func(ctx context.Context, network, address string) (layer.Conn, error) {
		deadline, ok := ctx.Deadline()
		timeout := sidecarapi.DialTimeout
		if ok {
			timeout = time.Until(deadline)
		}
		stream, err := sess.Dial(ctx, network, address, timeout)
		if err != nil {
			return nil, err
		}
		if network == "udp" {
			return &datagramStream{stream}, nil
		}
		return stream, nil
	}
}

// datagramStream carries datagrams on a stream, one frame each (wire.WriteDatagram). The
// stream is a field, not embedded: its WriteTo and ReadFrom copy bytes unframed, and io.Copy
// must not find them here.
type datagramStream struct{ stream *sidecarclient.Stream }

func (d *datagramStream) Read(p []byte) (int, error) { return wire.ReadDatagram(d.stream, p) }
func (d *datagramStream) Write(p []byte) (int, error) {
	if err := wire.WriteDatagram(d.stream, p); err != nil {
		return 0, err
	}
	return len(p), nil
}
func (d *datagramStream) CloseWrite() error { return d.stream.CloseWrite() }
func (d *datagramStream) Close() error      { return d.stream.Close() }
