package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/remocal/kubectl-remocal/pkg/transport"
	"github.com/remocal/kubectl-remocal/pkg/wire"
)

const (
	lsLong = `List the remocal sidecars of the pods in the namespace, live and dead, one row
per sidecar: its pod, the container it targets, its state, its age, the client
key it serves (OWNER, "(you)" when it is this machine's key), its image, and
the pod ports its sessions hold (SUBSCRIPTIONS).

A sidecar answers only the key it serves, so only your own running sidecars are
asked for their subscriptions, each within 5 seconds and all at once; the
others show "-". A TARGET (TYPE/NAME) restricts the list to the pod exec would
pick for it.`

	lsExample = `  # The sidecars in the current namespace
  kubectl remocal ls

  # In every namespace
  kubectl remocal ls -A

  # Those of the pod exec would pick for a workload, as JSON
  kubectl remocal ls deployment/web -o json`
)

// lsAskTimeout bounds the whole question to one sidecar: connecting and its answer.
const lsAskTimeout = 5 * time.Second

// lsParallel bounds how many sidecars are asked at once.
const lsParallel = 8

// lsOutputs are the values of ls's -o, as kubectl names them.
var lsOutputs = []string{"", "json", "yaml"}

// LsOptions holds the flags and state of "kubectl remocal ls".
type LsOptions struct {
	genericiooptions.IOStreams
	sessionOptions
	AllNamespaces bool
	Output        string
}

// NewCmdLs returns "kubectl remocal ls".
func NewCmdLs(configFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := &LsOptions{sessionOptions: newSessionOptions(configFlags), IOStreams: streams}
	o.inspect = true
	cmd := &cobra.Command{
		Use:                   "ls [TYPE/NAME] [-A] [-o json|yaml]",
		DisableFlagsInUseLine: true,
		Short:                 "List the remocal sidecars in a namespace, with their state, owner and subscriptions",
		Long:                  lsLong,
		Example:               lsExample,
		Args:                  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target := ""
			if len(args) == 1 {
				target = args[0]
			}
			if err := o.sessionOptions.Complete(target); err != nil {
				return err
			}
			// Only a TARGET on the command line restricts the list, not the configuration's.
			o.targetRef = target
			if err := o.Validate(); err != nil {
				return usageError(cmd, err)
			}
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "list the sidecars in all namespaces")
	f.StringVarP(&o.Output, "output", "o", o.Output, "Output format. One of: (json, yaml).")
	f.StringVar(&o.Transport, "transport", o.Transport, "how to reach your sidecars: auto (direct when the pod IP is reachable, else port-forward), direct, port-forward")
	cmd.ValidArgsFunction = completeTarget(configFlags)
	return cmd
}

// Validate checks the flags without I/O.
func (o *LsOptions) Validate() error {
	if !slices.Contains(lsOutputs, o.Output) {
		return fmt.Errorf("--output must be 'json' or 'yaml', not %q", o.Output)
	}
	if o.AllNamespaces && o.targetRef != "" {
		return errors.New("a TARGET names one pod of one namespace: it does not go with --all-namespaces")
	}
	switch o.Transport {
	case "auto", "direct", "port-forward":
	default:
		return fmt.Errorf("--transport must be auto, direct or port-forward, not %q", o.Transport)
	}
	return nil
}

// Run lists the pods, asks your running sidecars for their subscriptions, and prints.
func (o *LsOptions) Run(ctx context.Context) error {
	var pods []corev1.Pod
	switch {
	case o.targetRef != "":
		t, err := resolveTarget(ctx, o.configFlags, o.namespace, o.targetRef, "", 5*time.Second)
		if err != nil {
			return err
		}
		pods = []corev1.Pod{*t.pod}
	default:
		ns := o.namespace
		if o.AllNamespaces {
			ns = metav1.NamespaceAll
		}
		list, err := o.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list the pods: %w", err)
		}
		pods = list.Items
	}
	id, pin, err := o.identity()
	if err != nil {
		return err
	}
	rows := sidecarRows(pods, pin, time.Now())
	o.askSubscriptions(ctx, rows, pods, id)
	if len(rows) == 0 && o.Output == "" {
		where := "namespace " + o.namespace
		switch {
		case o.AllNamespaces:
			where = "any namespace"
		case o.targetRef != "":
			where = "pod " + pods[0].Name
		}
		fmt.Fprintf(o.ErrOut, "No remocal sidecars in %s.\n", where)
		return nil
	}
	return printSidecars(o.Out, rows, o.Output, o.AllNamespaces)
}

// identity loads this machine's client key, without creating one: with no key, no sidecar is
// yours.
func (o *LsOptions) identity() (transport.Identity, string, error) {
	if _, err := os.Stat(o.keyPath); errors.Is(err, fs.ErrNotExist) {
		return transport.Identity{}, "", nil
	}
	id, err := transport.LoadOrCreateIdentity(o.keyPath)
	if err != nil {
		return transport.Identity{}, "", fmt.Errorf("client key %s: %w", o.keyPath, err)
	}
	return id, id.Fingerprint(), nil
}

// sidecarRow is one sidecar in ls's output. Its JSON form is for tools: field names are stable.
type sidecarRow struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Sidecar   string `json:"sidecar"`
	Target    string `json:"target"`
	// State is running, waiting, terminated, or pending (no status yet).
	State    string       `json:"state"`
	Reason   string       `json:"reason,omitempty"`
	ExitCode *int32       `json:"exitCode,omitempty"`
	Started  *metav1.Time `json:"startedAt,omitempty"`
	// Owner is the fingerprint of the client key the sidecar serves; Yours says it is this
	// machine's.
	Owner string `json:"owner"`
	Yours bool   `json:"yours"`
	Image string `json:"image"`
	// Subscriptions is set when the sidecar was asked; otherwise SubscriptionsUnknown says why
	// not (not yours, not running, or the error).
	Subscriptions        []lsSubscription `json:"subscriptions"`
	SubscriptionsUnknown string           `json:"subscriptionsUnknown,omitempty"`

	age string // for the table
	// asked marks a row whose subscriptions were asked for (Subscriptions may be empty).
	asked bool
}

// lsSubscription is one pod port a session of the sidecar holds.
type lsSubscription struct {
	Port   uint16 `json:"port"`
	Mode   string `json:"mode"`
	Header string `json:"header,omitempty"`
	Path   string `json:"path,omitempty"`
	// Client is the address of the session holding it, as the sidecar sees it.
	Client string `json:"client"`
	// Capture: a mirror by packet capture; otherwise the port is redirected.
	Capture bool `json:"capture"`
}

// Why a row's subscriptions are not listed.
const (
	unknownNotYours   = "not yours: a sidecar answers only the key it serves"
	unknownNotRunning = "not running"
)

// sidecarRows makes a row of each remocal sidecar of pods, in the pods' order and, within a
// pod, in the order the sidecars were added. pin is this machine's key, or "".
func sidecarRows(pods []corev1.Pod, pin string, now time.Time) []sidecarRow {
	var rows []sidecarRow
	for _, pod := range pods {
		statuses := map[string]corev1.ContainerStatus{}
		for _, s := range pod.Status.EphemeralContainerStatuses {
			statuses[s.Name] = s
		}
		for _, ec := range pod.Spec.EphemeralContainers {
			if !strings.HasPrefix(ec.Name, sidecarNamePrefix) {
				continue
			}
			owner := sidecarFlags(ec).ClientPin
			r := sidecarRow{
				Namespace: pod.Namespace,
				Pod:       pod.Name,
				Sidecar:   ec.Name,
				Target:    ec.TargetContainerName,
				Owner:     owner,
				Yours:     pin != "" && owner == pin,
				Image:     ec.Image,
			}
			status, ok := statuses[ec.Name]
			r.State, r.Reason, r.ExitCode, r.Started = containerState(status, ok)
			r.age = "<unknown>"
			if r.Started != nil {
				r.age = duration.HumanDuration(now.Sub(r.Started.Time))
			}
			switch {
			case r.State != "running":
				r.SubscriptionsUnknown = unknownNotRunning
			case !r.Yours:
				r.SubscriptionsUnknown = unknownNotYours
			}
			rows = append(rows, r)
		}
	}
	return rows
}

// containerState reads an ephemeral container's status: its state, the reason and exit code
// when it has them, and when it started.
func containerState(s corev1.ContainerStatus, ok bool) (state, reason string, exitCode *int32, started *metav1.Time) {
	switch {
	case !ok:
		return "pending", "", nil, nil
	case s.State.Running != nil:
		return "running", "", nil, startedAt(s.State.Running.StartedAt)
	case s.State.Terminated != nil:
		t := s.State.Terminated
		code := t.ExitCode
		reason := t.Reason
		if reason == "" && t.Signal != 0 {
			reason = "signal " + strconv.Itoa(int(t.Signal))
		}
		return "terminated", reason, &code, startedAt(t.StartedAt)
	case s.State.Waiting != nil:
		return "waiting", s.State.Waiting.Reason, nil, nil
	}
	return "pending", "", nil, nil
}

func startedAt(t metav1.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// status is the row's STATUS column.
func (r sidecarRow) status() string {
	s := r.State
	var details []string
	if r.Reason != "" {
		details = append(details, r.Reason)
	}
	if r.ExitCode != nil {
		details = append(details, "exit "+strconv.Itoa(int(*r.ExitCode)))
	}
	if len(details) > 0 {
		s += " (" + strings.Join(details, ", ") + ")"
	}
	return s
}

// owner is the row's OWNER column: the key fingerprint shortened, as Git shortens commits.
func (r sidecarRow) owner() string {
	if r.Owner == "" {
		return "-"
	}
	short := strings.TrimPrefix(r.Owner, "sha256:")
	if len(short) > 12 {
		short = short[:12]
	}
	if r.Yours {
		short += " (you)"
	}
	return short
}

// subscriptions is the row's SUBSCRIPTIONS column.
func (r sidecarRow) subscriptions() string {
	switch {
	case r.SubscriptionsUnknown == unknownNotYours || r.SubscriptionsUnknown == unknownNotRunning:
		return "-"
	case r.SubscriptionsUnknown != "":
		return "? (" + r.SubscriptionsUnknown + ")"
	case len(r.Subscriptions) == 0:
		return "none"
	}
	parts := make([]string, len(r.Subscriptions))
	for i, s := range r.Subscriptions {
		p := strconv.Itoa(int(s.Port)) + " " + s.Mode
		if s.Header != "" {
			p += fmt.Sprintf(" header=%q", s.Header)
		}
		if s.Path != "" {
			p += fmt.Sprintf(" path=%q", s.Path)
		}
		parts[i] = p
	}
	return strings.Join(parts, ", ")
}

// askSubscriptions asks each of your running sidecars for its subscriptions, in parallel, each
// within lsAskTimeout, and fills in the rows.
func (o *LsOptions) askSubscriptions(ctx context.Context, rows []sidecarRow, pods []corev1.Pod, id transport.Identity) {
	var wg sync.WaitGroup
	slots := make(chan struct{}, lsParallel)
	for i := range rows {
		r := &rows[i]
		if r.SubscriptionsUnknown != "" {
			continue
		}
		pod, ec, ok := findSidecar(pods, r.Namespace, r.Pod, r.Sidecar)
		if !ok {
			continue
		}
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			subs, err := o.ask(ctx, pod, ec, id)
			if err != nil {
				r.SubscriptionsUnknown = oneLine(err.Error())
				return
			}
			r.asked = true
			r.Subscriptions = make([]lsSubscription, len(subs))
			for j, s := range subs {
				r.Subscriptions[j] = lsSubscription{Port: s.Port, Mode: s.Mode, Header: s.Header, Path: s.Path, Client: s.Client, Capture: s.Capture}
			}
		})
	}
	wg.Wait()
}

func findSidecar(pods []corev1.Pod, namespace, pod, name string) (*corev1.Pod, corev1.EphemeralContainer, bool) {
	for i := range pods {
		if pods[i].Namespace != namespace || pods[i].Name != pod {
			continue
		}
		for _, ec := range pods[i].Spec.EphemeralContainers {
			if ec.Name == name {
				return &pods[i], ec, true
			}
		}
	}
	return nil, corev1.EphemeralContainer{}, false
}

// ask connects to one sidecar as a session does and asks for its subscriptions. The whole of it
// is bounded: a sidecar that just died, or a link that stalls, costs lsAskTimeout at most, and
// what is still running then is left to end by itself.
func (o *LsOptions) ask(ctx context.Context, pod *corev1.Pod, ec corev1.EphemeralContainer, id transport.Identity) ([]wire.SubscriptionInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, lsAskTimeout)
	defer cancel()
	type result struct {
		subs []wire.SubscriptionInfo
		err  error
	}
	done := make(chan result, 1)
	go func() {
		sess, _, err := o.connectQuickly(ctx, pod, ec, id)
		if err != nil {
			done <- result{err: err}
			return
		}
		subs, err := sess.Subscriptions()
		sess.Close()
		done <- result{subs, err}
	}()
	select {
	case r := <-done:
		return r.subs, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("no answer within %s", lsAskTimeout)
	}
}

// errOldSidecar: the sidecar predates the Subscriptions request.
var errOldSidecar = errors.New("a sidecar of an older remocal version cannot list them")

// Subscriptions asks the sidecar for the pod ports its sessions hold.
func (s *session) Subscriptions() ([]wire.SubscriptionInfo, error) {
	if !slices.Contains(s.hello.Features, wire.FeatureSubscriptions) {
		return nil, errOldSidecar
	}
	s.controlMu.Lock()
	defer s.controlMu.Unlock()
	if err := wire.WriteMessage(s.control, wire.Subscriptions{}); err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	msg, err := s.reader.ReadMessage()
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	switch m := msg.(type) {
	case wire.SubscriptionsReply:
		return m.Subscriptions, nil
	case wire.Error:
		return nil, fmt.Errorf("the sidecar cannot list its subscriptions: %s", m.Reason)
	default:
		s.outOfStep()
		return nil, fmt.Errorf("list subscriptions: unexpected reply %T", msg)
	}
}

// printSidecars writes the rows as a table (kubectl's column layout, NAMESPACE first with
// --all-namespaces) or as JSON or YAML.
func printSidecars(w io.Writer, rows []sidecarRow, output string, allNamespaces bool) error {
	list := struct {
		Sidecars []sidecarRow `json:"sidecars"`
	}{Sidecars: rows}
	if list.Sidecars == nil {
		list.Sidecars = []sidecarRow{}
	}
	for i := range list.Sidecars {
		if list.Sidecars[i].asked && list.Sidecars[i].Subscriptions == nil {
			list.Sidecars[i].Subscriptions = []lsSubscription{}
		}
	}
	switch output {
	case "":
		return printSidecarTable(w, rows, allNamespaces)
	default:
		return printObject(w, list, output, "the sidecars")
	}
}

func printSidecarTable(w io.Writer, rows []sidecarRow, allNamespaces bool) error {
	return printTable(w, func(tw io.Writer) {
		header := "POD\tSIDECAR\tTARGET\tSTATUS\tAGE\tOWNER\tIMAGE\tSUBSCRIPTIONS"
		if allNamespaces {
			header = "NAMESPACE\t" + header
		}
		fmt.Fprintln(tw, header)
		for _, r := range rows {
			if allNamespaces {
				fmt.Fprintf(tw, "%s\t", r.Namespace)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Pod, r.Sidecar, r.Target, oneLine(r.status()), r.age, r.owner(), r.Image, oneLine(r.subscriptions()))
		}
	})
}
