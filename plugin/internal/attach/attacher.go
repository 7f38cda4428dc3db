// Package attach is the sidecar's lifecycle in the target pod, as the commands see it: it
// resolves the target (TYPE/NAME) to a running pod and container, reuses a sidecar there that
// serves this machine's key or checks the user's rights and the namespace's Pod Security level
// and adds one as an ephemeral container, and connects to it, directly over UDP to the pod IP
// or through a port-forward. The Session it returns is the sidecar client's, with the target it
// serves.
//
// The commands reach it through an Attacher (New, Start); doctor and ls use the pieces of Start
// one by one (Resolve, Reusable, Add, Paths, Connect), so that what they report is what a
// session does.
package attach

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/remocal/kubectl-remocal/pkg/sidecarapi"
	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/plugin/internal/progress"
)

// Config is what an Attacher works with: its clients of the cluster (all it knows of it, so
// that tests give it fakes), this machine's key, and the command's target and flags.
type Config struct {
	// Getter finds the target as kubectl does (resource builder, a workload's pod).
	Getter     genericclioptions.RESTClientGetter
	Client     kubernetes.Interface
	RESTConfig *rest.Config // for the port-forward
	Namespace  string
	KeyPath    string // this machine's client key for the cluster

	Ref          string // the TARGET, TYPE/NAME
	Container    string // -c; "" for the pod's default
	Image        string
	StartTimeout time.Duration
	// TTL and MaxLifetime are a new sidecar's.
	TTL         time.Duration
	MaxLifetime time.Duration
	Transport   Transport
	// BreakLinkEvery, when set, breaks the port-forward connection at that period: a test of
	// the link's recovery through the real binary.
	BreakLinkEvery time.Duration
	// DirectFamily, when set, keeps the direct path to the pod's address of that family: a
	// test of either family's path on a dual-stack cluster.
	DirectFamily corev1.IPFamily
	Use          Use
	// Label names the user in the sidecar's listing of its sessions (wire.CheckLabel holds);
	// "" for none.
	Label string
}

// Attacher takes a command to its target's sidecar: it resolves the target, reuses a sidecar
// that serves this client or checks the user's rights and adds one, and connects to it.
type Attacher struct {
	Config
}

// New returns the Attacher for cfg.
func New(cfg Config) *Attacher {
	return &Attacher{Config: cfg}
}

// targetWait bounds the wait for a workload's pod: a workload with no pod at all is an error
// within seconds, not after the start timeout.
const targetWait = 5 * time.Second

// Start resolves the target, reuses its sidecar or checks what the user may do and adds one,
// and connects to it.
func (a *Attacher) Start(ctx context.Context, p *progress.Printer) (*Session, error) {
	t, err := a.resolveWithin(ctx, min(a.StartTimeout, targetWait))
	if err != nil {
		return nil, err
	}
	return a.StartTarget(ctx, p, t)
}

// StartTarget is Start on a target resolved already: the pod a session follows its workload to.
func (a *Attacher) StartTarget(ctx context.Context, p *progress.Printer, t *Target) (*Session, error) {
	if err := RefuseHostNamespaces(t.Pod); err != nil {
		return nil, err
	}
	if err := RefuseWindows(ctx, a.Client, t.Pod); err != nil {
		return nil, err
	}
	if t.Via != "" {
		p.Step("target %s: pod %s, container %s", t.Via, t.Pod.Name, t.Container)
	} else {
		p.Step("target pod %s, container %s", t.Pod.Name, t.Container)
	}
	id, err := transport.LoadOrCreateIdentity(a.KeyPath)
	if err != nil {
		return nil, fmt.Errorf("client key %s: %w", a.KeyPath, err)
	}
	sess, ec, err := a.reuse(ctx, p, t, id)
	if err != nil {
		return nil, err
	}
	if sess != nil {
		return a.serve(ctx, p, t, sess, ec)
	}
	added, err := a.Add(ctx, p, t, id.Fingerprint())
	if err != nil {
		return nil, err
	}
	sess, how, err := a.connect(ctx, added.Pod, added.Sidecar.Name, added.Port, id)
	if err != nil {
		return nil, err
	}
	p.Step("connected (%s)", how)
	return a.serve(ctx, p, t, sess, added.Sidecar)
}

// serve checks that the sidecar ec, which sess reached, can do what the session is for, and
// makes t the session's target. It closes the session when not.
func (a *Attacher) serve(ctx context.Context, p *progress.Printer, t *Target, sess *Session, ec corev1.EphemeralContainer) (*Session, error) {
	if err := a.checkRedirect(ctx, sess, t.Pod, ec); err != nil {
		sess.Close()
		return nil, err
	}
	return sess.ready(ctx, p, t, ec)
}

// Resolve finds the target's pod and container, waiting a few seconds at most for a
// workload's pod.
func (a *Attacher) Resolve(ctx context.Context) (*Target, error) {
	return a.resolveWithin(ctx, targetWait)
}

// resolveWithin finds the target's pod and container, waiting up to wait for a workload's pod.
func (a *Attacher) resolveWithin(ctx context.Context, wait time.Duration) (*Target, error) {
	return resolveTarget(ctx, a.Getter, a.Namespace, a.Ref, a.Container, wait)
}

// reuse connects to the running sidecar of t's pod that serves this session, when there is
// one and it answers. With none, or none that answers, it returns no session and no error: a
// new sidecar is due. It fails only when ctx ends.
func (a *Attacher) reuse(ctx context.Context, p *progress.Printer, t *Target, id transport.Identity) (*Session, corev1.EphemeralContainer, error) {
	ec, ok := a.Reusable(t, id.Fingerprint())
	if !ok {
		return nil, ec, nil
	}
	p.Step("reusing sidecar %s", ec.Name)
	sess, how, err := a.connectQuickly(ctx, t.Pod, ec, id)
	if err == nil {
		p.Step("connected (%s)", how)
		return sess, ec, nil
	}
	if ctx.Err() != nil {
		return nil, ec, err
	}
	p.Warn("sidecar %s does not answer (%v); adding a new one", ec.Name, err)
	return nil, ec, nil
}

// Reusable finds the running sidecar of t's pod that a session would reuse: it serves the client
// key pin and offers what the session wants.
func (a *Attacher) Reusable(t *Target, pin string) (corev1.EphemeralContainer, bool) {
	return reusableSidecar(t.Pod, a.want(t.Container, pin), time.Now())
}

// want is what a sidecar to reuse for container must offer.
func (a *Attacher) want(container, pin string) sidecarWant {
	return sidecarWant{image: a.Image, container: container, pin: pin, direct: a.Transport == TransportDirect, needs: a.Use.Needs, steals: a.Use.Steals != ""}
}

// preflight asks the API server whether the user may do what a session needs, so that a
// refusal is one line naming the missing verb, and reads the namespace's Pod Security level,
// which a new sidecar must fit.
func (a *Attacher) preflight(ctx context.Context, namespace string) (SecurityLevel, error) {
	if err := checkPermissions(ctx, a.Client, namespace); err != nil {
		return "", err
	}
	return namespaceSecurityLevel(ctx, a.Client, namespace)
}

// Added is a sidecar just added to a pod and running.
type Added struct {
	Sidecar corev1.EphemeralContainer
	Port    int         // as the plugin chose it, not read back from the sidecar's command line
	Pod     *corev1.Pod // the pod with the sidecar running
}

// Add checks that the user may do what a session needs (one line naming a missing verb) and
// that the namespace's Pod Security level allows a steal the session asks for, adds a new
// sidecar for t serving the client key pin, as that level allows, and waits until it runs,
// up to StartTimeout.
func (a *Attacher) Add(ctx context.Context, p *progress.Printer, t *Target, pin string) (Added, error) {
	level, err := a.preflight(ctx, t.Pod.Namespace)
	if err != nil {
		return Added{}, err
	}
	if err := a.Use.refuseSteal(t.Pod.Namespace, level); err != nil {
		return Added{}, err
	}
	return a.add(ctx, p, t, pin, level)
}

// add adds a new sidecar for t to its pod, as the namespace's Pod Security level allows, and
// waits until it runs.
func (a *Attacher) add(ctx context.Context, p *progress.Printer, t *Target, pin string, level SecurityLevel) (Added, error) {
	pod := t.Pod
	flags := sidecarapi.Flags{
		ClientPin:   pin,
		Port:        sidecarPort(),
		TTL:         a.TTL,
		MaxLifetime: a.MaxLifetime,
		Direct:      a.Transport != TransportPortForward,
	}
	ec, lost := sidecarContainer(sidecarParams{
		Image:     a.Image,
		Target:    t.Container,
		Flags:     flags,
		Level:     level,
		RunAsUser: t.RunAsUser(),
		Needs:     a.Use.Needs,
	})
	if len(lost) > 0 {
		p.Warn("namespace %s enforces Pod Security %q: no %s; the environment, outgoing traffic and files still work", pod.Namespace, level, strings.Join(lost, ", no "))
	}
	if err := addSidecar(ctx, a.Client, pod, ec); err != nil {
		return Added{}, err
	}
	p.Step("added sidecar %s (%s), waiting for it to run", ec.Name, a.Image)
	pod, err := waitSidecarRunning(ctx, a.Client, pod, ec.Name, a.StartTimeout)
	if err != nil {
		return Added{}, err
	}
	p.Step("sidecar running")
	return Added{Sidecar: ec, Port: flags.Port, Pod: pod}, nil
}

// sidecarPort picks the port a new sidecar listens on: below Linux's default range of client
// ports (32768-60999), whose TIME_WAIT leftovers of the pod's own connections made a port in it
// refuse the sidecar's listen (bind: address already in use).
func sidecarPort() int { return 10000 + rand.IntN(20000) }
