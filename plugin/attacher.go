package plugin

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

// attacher takes a command to its target's sidecar: it resolves the target, reuses a sidecar
// that serves this client or checks the user's rights and adds one, and connects to it.
// attachFlags.Complete builds it; its clients are all it knows of the cluster, so that tests
// give it fakes.
type attacher struct {
	// getter finds the target as kubectl does (resource builder, a workload's pod).
	getter     genericclioptions.RESTClientGetter
	client     kubernetes.Interface
	restConfig *rest.Config // for the port-forward
	namespace  string
	keyPath    string // this machine's client key for the cluster

	ref            string // the TARGET, TYPE/NAME
	container      string // -c; "" for the pod's default
	image          string
	startTimeout   time.Duration
	ttl            time.Duration
	maxLifetime    time.Duration
	transport      transportMode
	breakLinkEvery time.Duration
	use            sessionUse
}

// targetWait bounds the wait for a workload's pod: a workload with no pod at all is an error
// within seconds, not after the start timeout.
const targetWait = 5 * time.Second

// start resolves the target, reuses its sidecar or checks what the user may do and adds one,
// and connects to it.
func (a *attacher) start(ctx context.Context, p *progress.Printer) (*session, error) {
	t, err := a.resolve(ctx, min(a.startTimeout, targetWait))
	if err != nil {
		return nil, err
	}
	if err := refuseHostNamespaces(t.pod); err != nil {
		return nil, err
	}
	if t.via != "" {
		p.Step("target %s: pod %s, container %s", t.via, t.pod.Name, t.container)
	} else {
		p.Step("target pod %s, container %s", t.pod.Name, t.container)
	}
	id, err := transport.LoadOrCreateIdentity(a.keyPath)
	if err != nil {
		return nil, fmt.Errorf("client key %s: %w", a.keyPath, err)
	}
	sess, ec, err := a.reuse(ctx, p, t, id)
	if err != nil {
		return nil, err
	}
	if sess != nil {
		return sess.ready(ctx, p, t, ec)
	}
	level, err := a.preflight(ctx, t.pod.Namespace)
	if err != nil {
		return nil, err
	}
	added, err := a.add(ctx, p, t, id.Fingerprint(), level)
	if err != nil {
		return nil, err
	}
	sess, how, err := a.connect(ctx, added.pod, added.ec.Name, added.port, id)
	if err != nil {
		return nil, err
	}
	p.Step("connected (%s)", how)
	return sess.ready(ctx, p, t, added.ec)
}

// resolve finds the target's pod and container, waiting up to wait for a workload's pod.
func (a *attacher) resolve(ctx context.Context, wait time.Duration) (*target, error) {
	return resolveTarget(ctx, a.getter, a.namespace, a.ref, a.container, wait)
}

// reuse connects to the running sidecar of t's pod that serves this session, when there is
// one and it answers. With none, or none that answers, it returns no session and no error: a
// new sidecar is due. It fails only when ctx ends.
func (a *attacher) reuse(ctx context.Context, p *progress.Printer, t *target, id transport.Identity) (*session, corev1.EphemeralContainer, error) {
	ec, ok := reusableSidecar(t.pod, a.want(t.container, id.Fingerprint()), time.Now())
	if !ok {
		return nil, ec, nil
	}
	p.Step("reusing sidecar %s", ec.Name)
	sess, how, err := a.connectQuickly(ctx, t.pod, ec, id)
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

// want is what a sidecar to reuse for container must offer.
func (a *attacher) want(container, pin string) sidecarWant {
	return sidecarWant{image: a.image, container: container, pin: pin, direct: a.transport == transportDirect, needs: a.use.needs}
}

// preflight asks the API server whether the user may do what a session needs, so that a
// refusal is one line naming the missing verb, and reads the namespace's Pod Security level,
// which a new sidecar must fit.
func (a *attacher) preflight(ctx context.Context, namespace string) (podSecurityLevel, error) {
	if err := checkPermissions(ctx, a.client, namespace); err != nil {
		return "", err
	}
	return namespaceSecurityLevel(ctx, a.client, namespace)
}

// addedSidecar is a sidecar just added to a pod and running.
type addedSidecar struct {
	ec   corev1.EphemeralContainer
	port int         // as the plugin chose it, not read back from ec's command line
	pod  *corev1.Pod // the pod with ec running
}

// add adds a new sidecar for t to its pod, as the namespace's Pod Security level allows, and
// waits until it runs.
func (a *attacher) add(ctx context.Context, p *progress.Printer, t *target, pin string, level podSecurityLevel) (addedSidecar, error) {
	pod := t.pod
	flags := sidecarapi.Flags{
		ClientPin:   pin,
		Port:        40000 + rand.IntN(20000),
		TTL:         a.ttl,
		MaxLifetime: a.maxLifetime,
		Direct:      a.transport != transportPortForward,
	}
	ec, lost := sidecarContainer(sidecarParams{
		Image:     a.image,
		Target:    t.container,
		Flags:     flags,
		Level:     level,
		RunAsUser: targetUser(pod, t.container),
		Needs:     a.use.needs,
	})
	if len(lost) > 0 {
		p.Warn("namespace %s enforces Pod Security %q: no %s; the environment, outgoing traffic and files still work", pod.Namespace, level, strings.Join(lost, ", no "))
	}
	if err := addSidecar(ctx, a.client, pod, ec); err != nil {
		return addedSidecar{}, err
	}
	p.Step("added sidecar %s (%s), waiting for it to run", ec.Name, a.image)
	pod, err := waitSidecarRunning(ctx, a.client, pod, ec.Name, a.startTimeout)
	if err != nil {
		return addedSidecar{}, err
	}
	p.Step("sidecar running")
	return addedSidecar{ec: ec, port: flags.Port, pod: pod}, nil
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
