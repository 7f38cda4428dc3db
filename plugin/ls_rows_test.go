package plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

const (
	myPin    = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	theirPin = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

var lsNow = time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)

func lsSidecar(name, pin string) corev1.EphemeralContainer {
	ec := corev1.EphemeralContainer{TargetContainerName: "app"}
	ec.Name, ec.Image = name, "remocal/sidecar:v1"
	if pin != "" {
		ec.Args = []string{"--client-pin=" + pin, "--port=41000", "--ttl=10m0s", "--direct=true"}
	}
	return ec
}

func lsPod() corev1.Pod {
	started := metav1.NewTime(lsNow.Add(-90 * time.Minute))
	pod := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-7d9f"}}
	pod.Spec.EphemeralContainers = []corev1.EphemeralContainer{
		lsSidecar("remocal-aaaaa", myPin),
		lsSidecar("debugger-xyz", myPin), // kubectl debug's, not ours
		lsSidecar("remocal-bbbbb", theirPin),
		lsSidecar("remocal-ccccc", myPin),
		lsSidecar("remocal-ddddd", myPin),
		lsSidecar("remocal-eeeee", ""),
	}
	pod.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{
		{Name: "remocal-aaaaa", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}},
		{Name: "remocal-bbbbb", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(lsNow.Add(-45 * time.Second))}}},
		{Name: "remocal-ccccc", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1, StartedAt: metav1.NewTime(lsNow.Add(-3 * 24 * time.Hour))}}},
		{Name: "remocal-ddddd", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}},
		// remocal-eeeee has no status yet.
	}
	return pod
}

func TestSidecarRows(t *testing.T) {
	rows := sidecarRows([]corev1.Pod{lsPod()}, myPin, lsNow)
	want := []struct {
		sidecar, status, age, owner, subs string
	}{
		{"remocal-aaaaa", "running", "90m", "111111111111 (you)", ""},
		{"remocal-bbbbb", "running", "45s", "222222222222", "-"},
		{"remocal-ccccc", "terminated (Error, exit 1)", "3d", "111111111111 (you)", "-"},
		{"remocal-ddddd", "waiting (ImagePullBackOff)", "<unknown>", "111111111111 (you)", "-"},
		{"remocal-eeeee", "pending", "<unknown>", "-", "-"},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d (only remocal-* sidecars): %+v", len(rows), len(want), rows)
	}
	for i, w := range want {
		r := rows[i]
		if r.Sidecar != w.sidecar || r.status() != w.status || r.age != w.age || r.owner() != w.owner || r.Target != "app" || r.Namespace != "shop" || r.Pod != "web-7d9f" {
			t.Errorf("row %d = %s %q %q %q, want %s %q %q %q", i, r.Sidecar, r.status(), r.age, r.owner(), w.sidecar, w.status, w.age, w.owner)
		}
		if w.subs != "" && r.subscriptions() != w.subs {
			t.Errorf("row %d subscriptions %q, want %q", i, r.subscriptions(), w.subs)
		}
	}
	// Only your running sidecar is left to ask.
	for i, r := range rows {
		if (r.SubscriptionsUnknown == "") != (i == 0) {
			t.Errorf("row %d (%s): unknown %q", i, r.Sidecar, r.SubscriptionsUnknown)
		}
	}
	// Without a key of this machine, nothing is yours.
	for _, r := range sidecarRows([]corev1.Pod{lsPod()}, "", lsNow) {
		if r.Yours || strings.Contains(r.owner(), "(you)") {
			t.Errorf("%s is yours without a key", r.Sidecar)
		}
	}
}

func TestContainerStateSignal(t *testing.T) {
	s := corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Signal: 9, ExitCode: 137}}}
	r := sidecarRow{}
	r.State, r.Reason, r.ExitCode, r.Started = containerState(s, true)
	if got := r.status(); got != "terminated (signal 9, exit 137)" {
		t.Errorf("status = %q", got)
	}
}

func TestSubscriptionsColumn(t *testing.T) {
	tests := []struct {
		row  sidecarRow
		want string
	}{
		{sidecarRow{asked: true}, "none"},
		{sidecarRow{SubscriptionsUnknown: unknownNotYours}, "-"},
		{sidecarRow{SubscriptionsUnknown: unknownNotRunning}, "-"},
		{sidecarRow{SubscriptionsUnknown: "no answer within 5s"}, "? (no answer within 5s)"},
		{sidecarRow{asked: true, Subscriptions: []lsSubscription{
			{Port: 80, Mode: "mirror", Capture: true},
			{Port: 8080, Mode: "steal", Header: "X-Dev: alice", Path: "^/api/"},
		}}, `80 mirror, 8080 steal header="X-Dev: alice" path="^/api/"`},
	}
	for _, tt := range tests {
		if got := tt.row.subscriptions(); got != tt.want {
			t.Errorf("subscriptions() = %q, want %q", got, tt.want)
		}
	}
}

// TestSessionsColumn: each session by its label, its age and its ports; a sidecar older than
// sessions shows the ports alone.
func TestSessionsColumn(t *testing.T) {
	alice := wire.SessionInfo{Sidecar: "remocal-aaaaa", Label: "alice@laptop", Since: lsNow.Add(-3 * time.Minute), Client: "198.18.0.1:4000", Ports: []wire.SessionPort{
		{Port: 8080, Mode: "steal", Header: "X-Dev: alice"},
		{Port: 80, Mode: "mirror", Capture: true},
	}}
	bob := wire.SessionInfo{Sidecar: "remocal-aaaaa", Label: "bob", Since: lsNow.Add(-40 * time.Second), Client: "client-0b0b", Ports: []wire.SessionPort{{Port: 8080, Mode: "steal", Header: "X-Dev: bob"}}}
	old := wire.SessionInfo{Sidecar: "remocal-aaaaa", Client: "198.18.0.1:4001"}
	other := wire.SessionInfo{Sidecar: "remocal-zzzzz", Label: "carol", Since: lsNow.Add(-time.Hour), Ports: []wire.SessionPort{{Port: 9090, Mode: "steal"}}}
	row := func(infos ...wire.SessionInfo) sidecarRow {
		r := sidecarRow{Sidecar: "remocal-aaaaa", asked: true}
		r.Sessions, r.Subscriptions = sessionsOf(r.Sidecar, infos, lsNow)
		return r
	}
	tests := []struct {
		name string
		row  sidecarRow
		want string
	}{
		{name: "none", row: row(), want: "none"},
		{name: "two users share a port", row: row(alice, bob), want: `alice@laptop (3m): 8080 steal header="X-Dev: alice", 80 mirror; bob (40s): 8080 steal header="X-Dev: bob"`},
		{name: "a session of an older plugin, holding nothing", row: row(old), want: "(no label) (<unknown>): no ports"},
		{name: "a session of another sidecar", row: row(other), want: "carol (60m, remocal-zzzzz): 9090 steal"},
		{name: "an older sidecar", row: sidecarRow{asked: true, Subscriptions: []lsSubscription{{Port: 8080, Mode: "steal"}}}, want: "8080 steal"},
		{name: "not yours", row: sidecarRow{SubscriptionsUnknown: unknownNotYours}, want: "-"},
	}
	for _, tt := range tests {
		if got := tt.row.sessions(); got != tt.want {
			t.Errorf("%s: sessions() = %q, want %q", tt.name, got, tt.want)
		}
	}
	// The row's subscriptions are its own sessions' ports, by port, as an older sidecar lists them.
	r := row(alice, bob, other)
	var ports []string
	for _, s := range r.Subscriptions {
		ports = append(ports, fmt.Sprintf("%d %s %s", s.Port, s.Header, s.Client))
	}
	if want := []string{"80  198.18.0.1:4000", "8080 X-Dev: alice 198.18.0.1:4000", "8080 X-Dev: bob client-0b0b"}; !slices.Equal(ports, want) {
		t.Errorf("subscriptions = %q, want %q", ports, want)
	}
}

func TestLsTable(t *testing.T) {
	rows := sidecarRows([]corev1.Pod{lsPod()}, myPin, lsNow)
	rows[0].asked = true
	rows[0].Sessions, rows[0].Subscriptions = sessionsOf("remocal-aaaaa", []wire.SessionInfo{
		{Sidecar: "remocal-aaaaa", Label: "alice@laptop", Since: lsNow.Add(-2 * time.Minute), Ports: []wire.SessionPort{{Port: 8080, Mode: "steal"}}},
	}, lsNow)
	for _, all := range []bool{false, true} {
		var out bytes.Buffer
		if err := printSidecars(&out, rows, "", all); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != 1+len(rows) {
			t.Fatalf("%d lines, want a header and one per sidecar:\n%s", len(lines), out.String())
		}
		wantHeader := []string{"POD", "SIDECAR", "TARGET", "STATUS", "AGE", "OWNER", "IMAGE", "SESSIONS"}
		if all {
			wantHeader = append([]string{"NAMESPACE"}, wantHeader...)
		}
		if got := strings.Fields(lines[0]); strings.Join(got, " ") != strings.Join(wantHeader, " ") {
			t.Errorf("header %q, want %q", lines[0], wantHeader)
		}
		// Columns line up: each header starts where its values start.
		col := strings.Index(lines[0], "SESSIONS")
		if got := lines[1][col:]; got != "alice@laptop (2m): 8080 steal" {
			t.Errorf("first row's SESSIONS = %q\n%s", got, out.String())
		}
		if !strings.Contains(lines[1], "111111111111 (you)") || !strings.Contains(lines[3], "terminated (Error, exit 1)") {
			t.Errorf("rows:\n%s", out.String())
		}
		if all != strings.HasPrefix(lines[1], "shop ") {
			t.Errorf("all namespaces %v, row %q", all, lines[1])
		}
		for _, l := range lines {
			if strings.HasSuffix(l, " ") {
				t.Errorf("line ends in padding: %q", l)
			}
		}
	}
}

func TestLsJSONAndYAML(t *testing.T) {
	rows := sidecarRows([]corev1.Pod{lsPod()}, myPin, lsNow)
	rows[0].asked = true
	rows[0].Sessions, rows[0].Subscriptions = sessionsOf("remocal-aaaaa", []wire.SessionInfo{
		{Sidecar: "remocal-aaaaa", Label: "alice@laptop", Since: lsNow.Add(-2 * time.Minute), Client: "198.18.0.1:4000"},
	}, lsNow)
	var out bytes.Buffer
	if err := printSidecars(&out, rows, "json", false); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Sidecars []map[string]any `json:"sidecars"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(got.Sidecars) != len(rows) {
		t.Fatalf("%d sidecars, want %d", len(got.Sidecars), len(rows))
	}
	first, dead := got.Sidecars[0], got.Sidecars[2]
	if first["owner"] != myPin || first["yours"] != true || first["state"] != "running" || first["startedAt"] != "2026-12-01T23:30:00Z" {
		t.Errorf("first sidecar = %v", first)
	}
	// Asked and none: an empty list, not null; not asked: null and the reason.
	if subs, ok := first["subscriptions"].([]any); !ok || len(subs) != 0 {
		t.Errorf("asked, no subscription: %#v, want []", first["subscriptions"])
	}
	if dead["subscriptions"] != nil || dead["sessions"] != nil || dead["subscriptionsUnknown"] != unknownNotRunning || dead["exitCode"] != 1.0 || dead["reason"] != "Error" {
		t.Errorf("terminated sidecar = %v", dead)
	}
	sessions, _ := first["sessions"].([]any)
	if len(sessions) != 1 {
		t.Fatalf("sessions = %#v, want alice's", first["sessions"])
	}
	alice := sessions[0].(map[string]any)
	if alice["label"] != "alice@laptop" || alice["since"] != "2026-12-02T00:58:00Z" || alice["sidecar"] != "remocal-aaaaa" || alice["client"] != "198.18.0.1:4000" {
		t.Errorf("session = %v", alice)
	}
	if subs, ok := alice["subscriptions"].([]any); !ok || len(subs) != 0 {
		t.Errorf("a session that holds no port: %#v, want []", alice["subscriptions"])
	}

	out.Reset()
	if err := printSidecars(&out, nil, "yaml", false); err != nil {
		t.Fatal(err)
	}
	var empty map[string]any
	if err := yaml.Unmarshal(out.Bytes(), &empty); err != nil {
		t.Fatal(err)
	}
	if l, ok := empty["sidecars"].([]any); !ok || len(l) != 0 {
		t.Errorf("no sidecars as yaml: %q", out.String())
	}
}

// Sessions your sidecar lists for another sidecar of its pod go to that sidecar's row, once,
// even when two of your sidecars in the pod list them.
func TestSpreadSessions(t *testing.T) {
	alice := lsSession{Label: "alice", Sidecar: "remocal-a", Client: "198.18.0.1:1", Subscriptions: []lsSubscription{{Port: 8080, Mode: "steal"}}}
	rows := []sidecarRow{
		{Namespace: "ns", Pod: "web", Sidecar: "remocal-a", SubscriptionsUnknown: unknownNotYours},
		{Namespace: "ns", Pod: "web", Sidecar: "remocal-b", asked: true, Sessions: []lsSession{{Label: "bob", Sidecar: "remocal-b"}, alice}},
		{Namespace: "ns", Pod: "web", Sidecar: "remocal-c", asked: true, Sessions: []lsSession{alice}},
		{Namespace: "ns", Pod: "api", Sidecar: "remocal-d", asked: true, Sessions: []lsSession{{Label: "dan", Sidecar: "remocal-x"}}},
	}
	spreadSessions(rows)
	if got := rows[0]; len(got.Sessions) != 1 || got.Sessions[0].Label != "alice" || len(got.Subscriptions) != 1 || got.SubscriptionsUnknown != "" {
		t.Errorf("alice's sidecar's row: %+v, want her one session and port", got)
	}
	if got := rows[1].Sessions; len(got) != 1 || got[0].Label != "bob" {
		t.Errorf("bob's sidecar's row keeps %+v, want bob's session only", got)
	}
	if got := rows[2].Sessions; len(got) != 0 {
		t.Errorf("the other sidecar's row keeps %+v, want none", got)
	}
	if got := rows[3].Sessions; len(got) != 1 {
		t.Errorf("a session of a sidecar without a row: %+v, want it kept where it was listed", got)
	}
}
