package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/plugin/internal/attach"
	"github.com/remocal/kubectl-remocal/plugin/internal/progress"
	"github.com/remocal/kubectl-remocal/plugin/internal/usererr"
	"github.com/remocal/kubectl-remocal/plugin/internal/within"
)

// linkReserve is the time kept for the link and environment checks when doctor waits for a
// sidecar it added.
const linkReserve = 4 * time.Second

// targetCheck resolves TYPE/NAME and the container as exec does.
func (o *DoctorOptions) targetCheck(ctx context.Context) (*attach.Target, check) {
	c := check{Name: "target"}
	if row, out := timeLeft(ctx, c.Name); out {
		return nil, row
	}
	ctx, cancel := bounded(ctx)
	defer cancel()
	t, err := within.Call(ctx, func() (*attach.Target, error) {
		return o.attacher.Resolve(ctx)
	}, nil)
	if err != nil {
		c.Status, c.Detail = statusFail, err.Error()
		c.Fix = fmt.Sprintf("kubectl get pods -n %s lists what there is; -c chooses the container", o.attacher.Namespace)
		return nil, c
	}
	if err := attach.RefuseHostNamespaces(t.Pod); err != nil {
		// exec would refuse it before adding anything: so must the rows after this one.
		c.Status, c.Detail = statusFail, err.Error()
		c.Fix = "target a pod without hostNetwork and hostPID"
		return nil, c
	}
	if err := attach.RefuseWindows(ctx, o.attacher.Client, t.Pod); err != nil {
		c.Status, c.Detail = statusFail, err.Error()
		c.Fix = "target a pod on a Linux node"
		return nil, c
	}
	c.Status, c.Detail = statusOK, fmt.Sprintf("pod %s, container %s", t.Pod.Name, t.Container)
	if t.Via != "" {
		c.Detail = t.Via + ": " + c.Detail
	}
	return t, c
}

// sidecarChecks finds or adds the sidecar as exec does, then checks both paths of the link and
// reads the environment through it. An added sidecar stays, pinned to this user's key: the next
// exec with the same image, target container and transport reuses it (until its --ttl).
func (o *DoctorOptions) sidecarChecks(ctx context.Context, t *attach.Target) []check {
	c := check{Name: "sidecar"}
	id, err := transport.LoadOrCreateIdentity(o.attacher.KeyPath)
	if err != nil {
		c.Status, c.Detail = statusFail, fmt.Sprintf("client key %s: %v", o.attacher.KeyPath, err)
		c.Fix = "remove the file, or check its permissions; a new key is made when it is missing"
		return []check{c}
	}
	pin := id.Fingerprint()
	var replaced string
	if ec, ok := o.attacher.Reusable(t, pin); ok {
		rows, answered := o.reusedLinkChecks(ctx, t.Pod, ec, id, t.Container)
		if answered || ctx.Err() != nil {
			c.Status, c.Detail = statusOK, fmt.Sprintf("%s runs %s (reused, as exec would)", ec.Name, o.SidecarImage)
			return append([]check{c}, rows...)
		}
		// As exec does with a sidecar that does not answer: add a new one.
		replaced = fmt.Sprintf("; %s did not answer, so this one replaces it as exec would", ec.Name)
	}
	if row, out := timeLeft(ctx, c.Name); out {
		return []check{row}
	}
	added, err := o.addBoundedSidecar(ctx, t, pin)
	switch {
	case err != nil && usererr.Is(err) && wait.Interrupted(err):
		c.Status = statusWarn
		c.Detail = fmt.Sprintf("added, but not running within doctor's time (the image may still be pulling): %v", err)
		c.Fix = fmt.Sprintf("exec waits up to --start-timeout; kubectl describe pod %s -n %s shows the pull", t.Pod.Name, t.Pod.Namespace)
		return []check{c, skipped("link", "the sidecar is not running yet")}
	case err != nil:
		c.Status, c.Detail = statusFail, err.Error()
		c.Fix = fmt.Sprintf("kubectl describe pod %s -n %s shows the pod's events; --sidecar-image chooses another image", t.Pod.Name, t.Pod.Namespace)
		return []check{c}
	}
	c.Status = statusOK
	c.Detail = fmt.Sprintf("%s added: image %s pulled and running; exec reuses it%s", added.Sidecar.Name, o.SidecarImage, replaced)
	rows, _ := o.linkChecks(ctx, added.Pod, added.Sidecar, added.Port, id, t.Container)
	return append([]check{c}, rows...)
}

// addBoundedSidecar adds a sidecar as exec does (permissions, Pod Security level, patch, wait
// for it to run, pull failures seen in the events) with its wait cut to what the run has left.
func (o *DoctorOptions) addBoundedSidecar(ctx context.Context, t *attach.Target, pin string) (attach.Added, error) {
	a := *o.attacher
	deadline, _ := ctx.Deadline()
	a.StartTimeout = min(a.StartTimeout, time.Until(deadline)-linkReserve)
	if a.StartTimeout <= 0 {
		a.StartTimeout = time.Second
	}
	// exec's progress lines would only repeat the rows; -v shows them.
	var w io.Writer = io.Discard
	if klog.V(1).Enabled() {
		w = o.ErrOut
	}
	return a.Add(ctx, progress.New(w), t, pin)
}

// reusedLinkChecks is linkChecks for a sidecar found in the pod, whose port is read from its
// command line.
func (o *DoctorOptions) reusedLinkChecks(ctx context.Context, pod *corev1.Pod, ec corev1.EphemeralContainer, id transport.Identity, container string) ([]check, bool) {
	port, err := attach.SidecarPort(ec)
	if err != nil {
		return []check{{Name: "link", Status: statusFail, Detail: err.Error(), Fix: "a sidecar of another remocal version: pass --sidecar-image matching this plugin"}}, false
	}
	return o.linkChecks(ctx, pod, ec, port, id, container)
}

// linkChecks connects to the sidecar ec, which serves port, over each path exec may take, and
// reads the target's environment through one that answered. It reports whether any did.
func (o *DoctorOptions) linkChecks(ctx context.Context, pod *corev1.Pod, ec corev1.EphemeralContainer, port int, id transport.Identity, container string) ([]check, bool) {
	if row, out := timeLeft(ctx, "link"); out {
		return []check{row}, false
	}
	keyCtx, cancel := bounded(ctx)
	paths, err := o.attacher.Paths(keyCtx, pod, ec.Name, port, id)
	cancel()
	if err != nil {
		return []check{{Name: "link", Status: statusFail, Detail: err.Error(),
			Fix: fmt.Sprintf("kubectl logs %s -n %s -c %s shows what the sidecar said", pod.Name, pod.Namespace, ec.Name)}}, false
	}
	direct, directSess := o.directCheck(ctx, paths, pod, port, ec)
	forward, forwardSess := o.portForwardCheck(ctx, paths, pod, port)
	defer func() {
		// The port-forward session first: while the sidecar has only a port-forward client
		// it pauses its direct path, and a doctor or exec right after this one would find
		// it paused until that client's departure is noticed.
		for _, s := range []*attach.Session{forwardSess, directSess} {
			if s != nil {
				s.Close()
			}
		}
	}()
	sess := directSess
	if sess == nil {
		sess = forwardSess
	}
	// A path that failed matters only when exec has no other.
	switch {
	case direct.Status == statusFail && forwardSess != nil && o.Transport == attach.TransportAuto:
		direct.Status = statusWarn
		direct.Fix = "nothing needed: exec takes the port-forward path, which is slower; the direct path needs the pod network routable from here (a node, a VPN)"
	case forward.Status == statusFail && directSess != nil && o.Transport == attach.TransportAuto:
		forward.Status = statusWarn
		forward.Fix = "nothing needed while the direct path answers; check create pods/portforward above"
	}
	env := check{Name: "environment"}
	if sess == nil {
		env = skipped(env.Name, "no path to the sidecar answered")
	} else {
		envCtx, cancel := bounded(ctx)
		err := sess.NameTarget(envCtx, attach.ContainerID(pod, container))
		var vars []string
		if err == nil {
			vars, err = sess.Environ(envCtx)
		}
		cancel()
		if err != nil {
			env.Status, env.Detail = statusFail, err.Error()
			env.Fix = "see the pod security row: the sidecar may lack the rights to read the target's process"
		} else {
			env.Status, env.Detail = statusOK, fmt.Sprintf("%d variables of container %s", len(vars), container)
		}
	}
	return []check{direct, forward, env}, sess != nil
}

// directCheck is exec's direct path: QUIC over UDP to the pod's IPs, given up after 1.5 s.
func (o *DoctorOptions) directCheck(ctx context.Context, paths attach.Paths, pod *corev1.Pod, port int, ec corev1.EphemeralContainer) (check, *attach.Session) {
	c := check{Name: "direct UDP"}
	if o.Transport == attach.TransportPortForward {
		return skipped(c.Name, "--transport port-forward"), nil
	}
	if !attach.SidecarFlags(ec).Direct {
		return skipped(c.Name, fmt.Sprintf("%s was started with --transport port-forward: it listens on loopback only", ec.Name)), nil
	}
	if pod.Status.PodIP == "" {
		return skipped(c.Name, "the pod has no IP yet"), nil
	}
	if row, out := timeLeft(ctx, c.Name); out {
		return row, nil
	}
	begin := time.Now()
	sess, addr, err := paths.Direct(ctx)
	if err != nil {
		c.Status = statusFail
		c.Detail = fmt.Sprintf("no QUIC answer on port %d: %v", port, err)
		c.Fix = "--transport direct needs the pod network routable from here (a node, a VPN), and no session of this sidecar on the port-forward path only (the sidecar pauses its direct path then); the default (auto) falls back to port-forward"
		return c, nil
	}
	c.Status = statusOK
	c.Detail = fmt.Sprintf("QUIC to %s answered in %s", netip.AddrPortFrom(addr, uint16(port)), time.Since(begin).Round(time.Millisecond))
	return c, sess
}

// portForwardCheck is exec's fallback path: QUIC carried in a port-forward through the API
// server.
func (o *DoctorOptions) portForwardCheck(ctx context.Context, paths attach.Paths, pod *corev1.Pod, port int) (check, *attach.Session) {
	c := check{Name: "port-forward"}
	if o.Transport == attach.TransportDirect {
		return skipped(c.Name, "--transport direct"), nil
	}
	if row, out := timeLeft(ctx, c.Name); out {
		return row, nil
	}
	ctx, cancel := bounded(ctx)
	defer cancel()
	begin := time.Now()
	sess, err := paths.PortForward(ctx)
	if err != nil {
		c.Status = statusFail
		c.Detail = fmt.Sprintf("no QUIC answer through a port-forward to %s:%d: %v", pod.Name, port, err)
		if errors.Is(err, context.DeadlineExceeded) {
			c.Detail = fmt.Sprintf("no QUIC answer through a port-forward to %s:%d within %s", pod.Name, port, checkTimeout)
		}
		c.Fix = "check create pods/portforward above, and that the API server reaches the node's kubelet (kubectl port-forward)"
		return c, nil
	}
	c.Status = statusOK
	c.Detail = fmt.Sprintf("QUIC through the API server to %s:%d answered in %s", pod.Name, port, time.Since(begin).Round(time.Millisecond))
	return c, sess
}

// skipped is a row not checked, and why.
func skipped(name, why string) check {
	return check{Name: name, Status: statusSkip, Detail: why}
}
