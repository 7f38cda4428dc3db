package plugin

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/remocal/kubectl-remocal/pkg/wire"
	"github.com/remocal/kubectl-remocal/plugin/internal/attach"
)

// ls's rows: one per remocal sidecar, read from the pods' specs and statuses, and how they
// print as a table, JSON or YAML.

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
	// Sessions is set when the sidecar was asked and lists its sessions (an older one
	// lists only the Subscriptions).
	Sessions []lsSession `json:"sessions"`

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

// lsSession is one session a sidecar serves.
type lsSession struct {
	// Label names the session's user (exec's and port-forward's --user-label); "" for a
	// plugin older than labels.
	Label string       `json:"label"`
	Since *metav1.Time `json:"since,omitempty"`
	// Sidecar is the sidecar that serves the session.
	Sidecar string `json:"sidecar"`
	// Client is the session's address, as the sidecar sees it.
	Client        string           `json:"client"`
	Subscriptions []lsSubscription `json:"subscriptions"`

	age string // for the table
}

// sessionsOf reads the sessions a sidecar listed, dated at now, and the ports they hold,
// for the row of sidecar: the ports of its own sessions, as an older sidecar lists them
// (by port, then in the order taken, as far as the sessions' order tells it).
func sessionsOf(sidecar string, infos []wire.SessionInfo, now time.Time) ([]lsSession, []lsSubscription) {
	sessions := make([]lsSession, len(infos))
	subs := []lsSubscription{}
	for i, info := range infos {
		s := lsSession{Label: info.Label, Sidecar: info.Sidecar, Client: info.Client, Subscriptions: []lsSubscription{}, age: "<unknown>"}
		if !info.Since.IsZero() {
			since := metav1.NewTime(info.Since)
			s.Since = &since
			s.age = duration.HumanDuration(now.Sub(info.Since))
		}
		for _, p := range info.Ports {
			sub := lsSubscription{Port: p.Port, Mode: p.Mode, Header: p.Header, Path: p.Path, Client: info.Client, Capture: p.Capture}
			s.Subscriptions = append(s.Subscriptions, sub)
			if info.Sidecar == sidecar {
				subs = append(subs, sub)
			}
		}
		sessions[i] = s
	}
	slices.SortStableFunc(subs, func(a, b lsSubscription) int { return cmp.Compare(a.Port, b.Port) })
	return sessions, subs
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
			if !attach.IsSidecar(ec) {
				continue
			}
			owner := attach.SidecarFlags(ec).ClientPin
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

// sessions is the row's SESSIONS column: each session's label, age and ports, or, from a
// sidecar older than sessions, the ports alone.
func (r sidecarRow) sessions() string {
	if r.Sessions == nil {
		return r.subscriptions()
	}
	if len(r.Sessions) == 0 {
		return "none"
	}
	parts := make([]string, len(r.Sessions))
	for i, s := range r.Sessions {
		label := cmp.Or(s.Label, "(no label)")
		when := s.age
		if s.Sidecar != "" && s.Sidecar != r.Sidecar {
			when += ", " + s.Sidecar
		}
		ports := "no ports"
		if len(s.Subscriptions) > 0 {
			ports = formatSubscriptions(s.Subscriptions)
		}
		parts[i] = fmt.Sprintf("%s (%s): %s", label, when, ports)
	}
	return strings.Join(parts, "; ")
}

// subscriptions is the ports the row's sessions hold, or why they are not known.
func (r sidecarRow) subscriptions() string {
	switch {
	case r.SubscriptionsUnknown == unknownNotYours || r.SubscriptionsUnknown == unknownNotRunning:
		return "-"
	case r.SubscriptionsUnknown != "":
		return "? (" + r.SubscriptionsUnknown + ")"
	case len(r.Subscriptions) == 0:
		return "none"
	}
	return formatSubscriptions(r.Subscriptions)
}

// formatSubscriptions spells ports and their modes: 8080 steal header="X-Dev: alice".
func formatSubscriptions(subs []lsSubscription) string {
	parts := make([]string, len(subs))
	for i, s := range subs {
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
		header := "POD\tSIDECAR\tTARGET\tSTATUS\tAGE\tOWNER\tIMAGE\tSESSIONS"
		if allNamespaces {
			header = "NAMESPACE\t" + header
		}
		fmt.Fprintln(tw, header)
		for _, r := range rows {
			if allNamespaces {
				fmt.Fprintf(tw, "%s\t", r.Namespace)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Pod, r.Sidecar, r.Target, oneLine(r.status()), r.age, r.owner(), r.Image, oneLine(r.sessions()))
		}
	})
}
