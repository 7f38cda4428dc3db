package plugin

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/remocal/kubectl-remocal/pkg/sidecarapi"
	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/pkg/version"
	"github.com/remocal/kubectl-remocal/plugin/internal/configfile"
)

// sessionOptions are the flags and clients of every command that attaches to a pod through a
// sidecar (exec, port-forward).
type sessionOptions struct {
	configFlags *genericclioptions.ConfigFlags

	Container    string
	SidecarImage string
	StartTimeout time.Duration
	TTL          time.Duration
	MaxLifetime  time.Duration
	Transport    string
	// BreakLinkEvery is a hidden test flag: break the port-forward connection at this period.
	BreakLinkEvery time.Duration
	// inspect marks the sessions of commands that only look (ls, clean): the sidecar's TTL
	// is left as it was when they end.
	inspect bool
	// needs is what the command asks of the pod's network (steal, mirror): the capabilities
	// a sidecar it adds is given, and that one it reuses must have. Set before startSession.
	needs sidecarNeeds

	// fileTarget is the configuration file's target: the TARGET when the command line names
	// none. Set by applyConfigFile.
	fileTarget string

	// Set by Complete.
	namespace  string
	targetRef  string
	restConfig *rest.Config
	client     kubernetes.Interface
	keyPath    string
}

func newSessionOptions(configFlags *genericclioptions.ConfigFlags) sessionOptions {
	return sessionOptions{
		configFlags:  configFlags,
		SidecarImage: version.DefaultSidecarImage(),
		StartTimeout: 60 * time.Second,
		// The sidecar's own defaults, which the plugin always passes on.
		TTL:         sidecarapi.DefaultTTL,
		MaxLifetime: sidecarapi.DefaultMaxLifetime,
		Transport:   "auto",
	}
}

// AddFlags binds the session flags.
func (o *sessionOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&o.Container, "container", "c", o.Container, "container of the pod to act as (default: the kubectl.kubernetes.io/default-container annotation, else the first)")
	f.StringVar(&o.SidecarImage, "sidecar-image", o.SidecarImage, "image of the sidecar added to the pod")
	f.DurationVar(&o.StartTimeout, "start-timeout", o.StartTimeout, "how long to wait for the sidecar to run")
	f.DurationVar(&o.TTL, "ttl", o.TTL, "a new sidecar exits after this long without a client")
	f.DurationVar(&o.MaxLifetime, "max-lifetime", o.MaxLifetime, "a new sidecar ends its sessions and exits after this long, even with clients")
	f.StringVar(&o.Transport, "transport", o.Transport, "how to reach the sidecar: auto (direct when the pod IP is reachable, else port-forward), direct, port-forward")
	f.DurationVar(&o.BreakLinkEvery, "debug-break-link-every", 0, "break the port-forward connection at this period (tests the link's recovery)")
	_ = f.MarkHidden("debug-break-link-every")
	cmd.ValidArgsFunction = completeTarget(o.configFlags)
	_ = cmd.RegisterFlagCompletionFunc("container", completeContainer(o.configFlags))
}

// Complete builds the clients for target (TYPE/NAME); "" is the configuration file's target.
func (o *sessionOptions) Complete(target string) error {
	o.targetRef = target
	if target == "" {
		o.targetRef = o.fileTarget
	}
	var err error
	if o.namespace, _, err = o.configFlags.ToRawKubeConfigLoader().Namespace(); err != nil {
		return err
	}
	if o.restConfig, err = o.configFlags.ToRESTConfig(); err != nil {
		return err
	}
	if o.client, err = kubernetes.NewForConfig(o.restConfig); err != nil {
		return err
	}
	dir, err := userDir()
	if err != nil {
		return fmt.Errorf("find a directory for the client key: %w", err)
	}
	if o.keyPath, err = clientKeyPath(dir, o.configFlags); err != nil {
		return fmt.Errorf("find the client key: %w", err)
	}
	return nil
}

// Validate checks the session flags without I/O.
func (o *sessionOptions) Validate() error {
	if o.targetRef == "" {
		return errors.New("a TARGET (TYPE/NAME) is required, on the command line or as \"target\" in " + configfile.FileName)
	}
	switch o.Transport {
	case "auto", "direct", "port-forward":
	default:
		return fmt.Errorf("--transport must be auto, direct or port-forward, not %q", o.Transport)
	}
	if o.StartTimeout <= 0 || o.TTL <= 0 || o.MaxLifetime <= 0 {
		return errors.New("--start-timeout, --ttl and --max-lifetime must be positive")
	}
	if o.SidecarImage == "" {
		return errors.New("--sidecar-image must not be empty")
	}
	return nil
}

// startSession resolves the target, checks what the user may do, finds or adds the sidecar, and
// connects to it.
func (o *sessionOptions) startSession(ctx context.Context, p *progress) (*session, error) {
	// A workload with no pod at all is an error within seconds, not after the start timeout.
	t, err := resolveTarget(ctx, o.configFlags, o.namespace, o.targetRef, o.Container, min(o.StartTimeout, 5*time.Second))
	if err != nil {
		return nil, err
	}
	if err := refuseHostNamespaces(t.pod); err != nil {
		return nil, err
	}
	if t.via != "" {
		p.step("target %s: pod %s, container %s", t.via, t.pod.Name, t.container)
	} else {
		p.step("target pod %s, container %s", t.pod.Name, t.container)
	}
	id, err := transport.LoadOrCreateIdentity(o.keyPath)
	if err != nil {
		return nil, fmt.Errorf("client key %s: %w", o.keyPath, err)
	}
	pin := id.Fingerprint()

	pod := t.pod
	if ec, reused := reusableSidecar(pod, o.want(t.container, pin), time.Now()); reused {
		p.step("reusing sidecar %s", ec.Name)
		sess, how, err := o.connectQuickly(ctx, pod, ec, id)
		if err == nil {
			p.step("connected (%s)", how)
			return sess.ready(p, t, ec)
		}
		if ctx.Err() != nil {
			return nil, err
		}
		p.warn("sidecar %s does not answer (%v); adding a new one", ec.Name, err)
	}
	added, err := o.addSidecar(ctx, p, pod, t.container, pin)
	if err != nil {
		return nil, err
	}
	sess, how, err := o.connect(ctx, added.pod, added.ec.Name, added.port, id)
	if err != nil {
		return nil, err
	}
	p.step("connected (%s)", how)
	return sess.ready(p, t, added.ec)
}

// ready makes t the session's target, on the sidecar ec's side too, and has the session say so
// on p when ec ends it at its maximum lifetime. It closes the session when the sidecar cannot
// serve t.
func (s *session) ready(p *progress, t *target, ec corev1.EphemeralContainer) (*session, error) {
	s.target = t
	if err := s.nameTarget(containerID(t.pod, t.container)); err != nil {
		s.Close()
		return nil, err
	}
	s.reportMaxLifetime(p, ec)
	return s, nil
}

// want is what a sidecar to reuse for container must offer.
func (o *sessionOptions) want(container, pin string) sidecarWant {
	return sidecarWant{image: o.SidecarImage, container: container, pin: pin, direct: o.Transport == "direct", needs: o.needs}
}

// reuseDialTimeout bounds the connection to a sidecar that the pod's status says runs.
const reuseDialTimeout = 5 * time.Second

// addedSidecar is a sidecar just added to a pod and running.
type addedSidecar struct {
	ec   corev1.EphemeralContainer
	port int         // as the plugin chose it, not read back from ec's command line
	pod  *corev1.Pod // the pod with ec running
}

// addSidecar checks what the user may do, adds a new sidecar to the pod and waits until it
// runs.
func (o *sessionOptions) addSidecar(ctx context.Context, p *progress, pod *corev1.Pod, container, pin string) (addedSidecar, error) {
	if err := checkPermissions(ctx, o.client, pod.Namespace); err != nil {
		return addedSidecar{}, err
	}
	level, err := namespaceSecurityLevel(ctx, o.client, pod.Namespace)
	if err != nil {
		return addedSidecar{}, err
	}
	flags := sidecarapi.Flags{
		ClientPin:   pin,
		Port:        40000 + rand.IntN(20000),
		TTL:         o.TTL,
		MaxLifetime: o.MaxLifetime,
		Direct:      o.Transport != "port-forward",
	}
	ec, lost := sidecarContainer(sidecarParams{
		Image:     o.SidecarImage,
		Target:    container,
		Flags:     flags,
		Level:     level,
		RunAsUser: targetUser(pod, container),
		Needs:     o.needs,
	})
	if len(lost) > 0 {
		p.warn("namespace %s enforces Pod Security %q: no %s; the environment, outgoing traffic and files still work", pod.Namespace, level, strings.Join(lost, ", no "))
	}
	if err := addSidecar(ctx, o.client, pod, ec); err != nil {
		return addedSidecar{}, err
	}
	p.step("added sidecar %s (%s), waiting for it to run", ec.Name, o.SidecarImage)
	if pod, err = waitSidecarRunning(ctx, o.client, pod, ec.Name, o.StartTimeout); err != nil {
		return addedSidecar{}, err
	}
	p.step("sidecar running")
	return addedSidecar{ec: ec, port: flags.Port, pod: pod}, nil
}

// connectQuickly is connect for a sidecar that the pod's status says runs: a live one answers
// within milliseconds, but the status may still say running of a sidecar that just died, and
// waiting on it would cost the whole dial timeout. Only the dial is bounded: the session, whose
// port-forward lives on the context, is not. A dial still running at the bound is left to end
// by itself in the background (a port-forward stream to a dead port ends only with its own
// timeout); what it connects then is closed.
func (o *sessionOptions) connectQuickly(ctx context.Context, pod *corev1.Pod, ec corev1.EphemeralContainer, id transport.Identity) (*session, string, error) {
	port, err := sidecarPort(ec)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithCancel(ctx)
	// The bound is the wait's alone: the session it yields lives on ctx.
	wait, stop := context.WithTimeout(context.WithoutCancel(ctx), reuseDialTimeout)
	defer stop()
	type result struct {
		sess *session
		how  string
	}
	r, err := within(wait, func() (result, error) {
		sess, how, err := o.connect(ctx, pod, ec.Name, port, id)
		return result{sess, how}, err
	}, func(r result) { r.sess.Close() })
	if err != nil {
		cancel()
		if errors.Is(err, errNoAnswer) {
			return nil, "", fmt.Errorf("no answer within %s", reuseDialTimeout)
		}
		return nil, "", err
	}
	r.sess.closers = append(r.sess.closers, closerFunc(cancel))
	return r.sess, r.how, nil
}

// closerFunc is a cancel function as an io.Closer.
type closerFunc func()

func (f closerFunc) Close() error {
	f()
	return nil
}

// connect opens the session with the sidecar of pod named name, which serves port.
func (o *sessionOptions) connect(ctx context.Context, pod *corev1.Pod, name string, port int, id transport.Identity) (*session, string, error) {
	serverPin, err := readSidecarFingerprint(ctx, o.client, pod, name)
	if err != nil {
		return nil, "", err
	}
	return dialSession(ctx, linkParams{
		restConfig: o.restConfig,
		pod:        pod,
		port:       port,
		mode:       o.Transport,
		tls:        transport.ClientTLS(id, serverPin),
		breakEvery: o.BreakLinkEvery,
		inspect:    o.inspect,
	})
}

// targetUser is the user the target container runs as, when the pod spec says.
func targetUser(pod *corev1.Pod, container string) *int64 {
	for _, c := range pod.Spec.Containers {
		if c.Name == container && c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
			return c.SecurityContext.RunAsUser
		}
	}
	if pod.Spec.SecurityContext != nil {
		return pod.Spec.SecurityContext.RunAsUser
	}
	return nil
}
