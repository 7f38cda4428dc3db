package attach

import (
	"cmp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/remocal/kubectl-remocal/pkg/sidecarapi"
)

func TestSidecarContainerBySecurityLevel(t *testing.T) {
	uid := int64(1000)
	tests := []struct {
		level       SecurityLevel
		user        *int64
		wantCaps    []corev1.Capability
		wantUser    *int64
		wantNonRoot bool
		wantLost    int
	}{
		{level: LevelPrivileged, wantCaps: []corev1.Capability{"NET_ADMIN", "NET_RAW", "SYS_PTRACE"}, wantUser: new(int64)},
		{level: LevelBaseline, wantCaps: nil, wantUser: new(int64), wantLost: 1},
		{level: LevelRestricted, user: &uid, wantCaps: nil, wantUser: &uid, wantNonRoot: true, wantLost: 1},
		{level: LevelRestricted, wantCaps: nil, wantNonRoot: true, wantLost: 2},
	}
	for _, tt := range tests {
		t.Run(string(tt.level), func(t *testing.T) {
			ec, lost := sidecarContainer(sidecarParams{
				Image: "img", Target: "app", Flags: sidecarapi.Flags{ClientPin: "sha256:ab", Port: 45000, TTL: time.Minute, MaxLifetime: 12 * time.Hour},
				Level: tt.level, RunAsUser: tt.user, Needs: allNeeds,
			})
			sc := ec.SecurityContext
			if tt.level == LevelBaseline {
				if sc.Capabilities != nil {
					t.Errorf("baseline capabilities = %v, want the runtime's defaults", sc.Capabilities)
				}
			} else {
				if !slices.Equal(sc.Capabilities.Add, tt.wantCaps) {
					t.Errorf("caps = %v, want %v", sc.Capabilities.Add, tt.wantCaps)
				}
				if !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
					t.Errorf("drop = %v, want ALL", sc.Capabilities.Drop)
				}
			}
			if (sc.RunAsUser == nil) != (tt.wantUser == nil) || (sc.RunAsUser != nil && *sc.RunAsUser != *tt.wantUser) {
				t.Errorf("runAsUser = %v, want %v", sc.RunAsUser, tt.wantUser)
			}
			if got := sc.RunAsNonRoot != nil && *sc.RunAsNonRoot; got != tt.wantNonRoot {
				t.Errorf("runAsNonRoot = %v, want %v", got, tt.wantNonRoot)
			}
			if len(lost) != tt.wantLost {
				t.Errorf("lost = %v, want %d items", lost, tt.wantLost)
			}
			if !strings.HasPrefix(ec.Name, sidecarNamePrefix) || ec.TargetContainerName != "app" {
				t.Errorf("name %q target %q", ec.Name, ec.TargetContainerName)
			}
			want := []string{"--client-pin=sha256:ab", "--port=45000", "--ttl=1m0s", "--max-lifetime=12h0m0s", "--direct=false", "--name=" + ec.Name}
			if !slices.Equal(ec.Args, want) {
				t.Errorf("args = %q, want %q", ec.Args, want)
			}
		})
	}
}

func TestReusableSidecar(t *testing.T) {
	mk := func(name, image, target, pin string, running bool) (corev1.EphemeralContainer, corev1.ContainerStatus) {
		ec := corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: name, Image: image, Args: []string{"--client-pin=" + pin, "--port=45000"}},
			TargetContainerName:      target,
		}
		st := corev1.ContainerStatus{Name: name}
		if running {
			st.State.Running = &corev1.ContainerStateRunning{}
		} else {
			st.State.Terminated = &corev1.ContainerStateTerminated{}
		}
		return ec, st
	}
	pod := &corev1.Pod{}
	for _, c := range []struct {
		name, image, target, pin string
		running                  bool
	}{
		{"remocal-dead1", "img:1", "app", "sha256:me", false},
		{"remocal-other", "img:1", "app", "sha256:someone-else", true},
		{"remocal-oldimg", "img:0", "app", "sha256:me", true},
		{"remocal-good1", "img:1", "app", "sha256:me", true},
		{"debugger", "img:1", "app", "sha256:me", true},
	} {
		ec, st := mk(c.name, c.image, c.target, c.pin, c.running)
		pod.Spec.EphemeralContainers = append(pod.Spec.EphemeralContainers, ec)
		pod.Status.EphemeralContainerStatuses = append(pod.Status.EphemeralContainerStatuses, st)
	}
	ec, ok := reusableSidecar(pod, sidecarWant{image: "img:1", container: "app", pin: "sha256:me"}, time.Now())
	if !ok || ec.Name != "remocal-good1" {
		t.Fatalf("reusableSidecar = %q, %v; want remocal-good1", ec.Name, ok)
	}
	if port, err := SidecarPort(ec); err != nil || port != 45000 {
		t.Fatalf("sidecarPort = %d, %v", port, err)
	}
	if _, ok := reusableSidecar(pod, sidecarWant{image: "img:1", container: "other-container", pin: "sha256:me"}, time.Now()); ok {
		t.Fatal("reused a sidecar that targets another container")
	}
	if _, ok := reusableSidecar(pod, sidecarWant{image: "img:1", container: "app", pin: "sha256:me", direct: true}, time.Now()); ok {
		t.Fatal("reused a loopback-only sidecar for --transport direct")
	}
}

// A sidecar near its maximum lifetime is not reused: the session would be cut short. One of a
// version without a maximum is reused as before.
func TestReusableSidecarLifetime(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	mk := func(started time.Time, args ...string) *corev1.Pod {
		ec := corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "remocal-x", Image: "img", Args: append([]string{"--client-pin=sha256:me", "--port=45000"}, args...)},
			TargetContainerName:      "app",
		}
		st := corev1.ContainerStatus{Name: "remocal-x", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(started)}}}
		return &corev1.Pod{
			Spec:   corev1.PodSpec{EphemeralContainers: []corev1.EphemeralContainer{ec}},
			Status: corev1.PodStatus{EphemeralContainerStatuses: []corev1.ContainerStatus{st}},
		}
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want bool
	}{
		{"fresh", mk(now.Add(-time.Minute), "--max-lifetime=12h0m0s"), true},
		{"two hours left", mk(now.Add(-10*time.Hour), "--max-lifetime=12h0m0s"), true},
		{"half an hour left", mk(now.Add(-11*time.Hour-30*time.Minute), "--max-lifetime=12h0m0s"), false},
		{"past it", mk(now.Add(-13*time.Hour), "--max-lifetime=12h0m0s"), false},
		{"no maximum (older sidecar)", mk(now.Add(-100 * time.Hour)), true},
	}
	for _, tt := range tests {
		if _, ok := reusableSidecar(tt.pod, sidecarWant{image: "img", container: "app", pin: "sha256:me"}, now); ok != tt.want {
			t.Errorf("%s: reused = %v, want %v", tt.name, ok, tt.want)
		}
	}
}

// Under the privileged level a sidecar gets only the capabilities its session needs; under the
// others it gets none to add, whatever the session needs.
func TestSidecarCapabilitiesBySessionNeeds(t *testing.T) {
	tests := []struct {
		name     string
		needs    Needs
		level    SecurityLevel
		wantCaps []corev1.Capability
		wantLost int
	}{
		{name: "no incoming traffic", wantCaps: []corev1.Capability{"SYS_PTRACE"}},
		{name: "mirror", needs: Needs{Capture: true}, wantCaps: []corev1.Capability{"NET_RAW", "SYS_PTRACE"}},
		{name: "steal", needs: Needs{Redirect: true}, wantCaps: []corev1.Capability{"NET_ADMIN", "SYS_PTRACE"}},
		{name: "baseline steal", level: LevelBaseline, needs: Needs{Redirect: true}, wantLost: 1},
		{name: "restricted steal", level: LevelRestricted, needs: Needs{Redirect: true}, wantLost: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ec, lost := sidecarContainer(sidecarParams{Image: "img", Level: cmp.Or(tt.level, LevelPrivileged), Needs: tt.needs})
			var caps []corev1.Capability
			if c := ec.SecurityContext.Capabilities; c != nil {
				caps = c.Add
			}
			if !slices.Equal(caps, tt.wantCaps) {
				t.Errorf("caps = %v, want %v", caps, tt.wantCaps)
			}
			if len(lost) != tt.wantLost {
				t.Errorf("lost = %q, want %d items", lost, tt.wantLost)
			}
		})
	}
}

// A sidecar is reused only when it has the capabilities the session needs; otherwise a new one
// is added. One added under baseline or restricted (nothing added) serves as it is: a new one
// would get no more.
func TestReusableSidecarCapabilities(t *testing.T) {
	pod := &corev1.Pod{}
	add := func(name string, sc *corev1.SecurityContext) {
		pod.Spec.EphemeralContainers = append(pod.Spec.EphemeralContainers, corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: name, Image: "img", Args: []string{"--client-pin=sha256:me"}, SecurityContext: sc},
			TargetContainerName:      "app",
		})
		pod.Status.EphemeralContainerStatuses = append(pod.Status.EphemeralContainerStatuses, corev1.ContainerStatus{
			Name: name, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
		})
	}
	privileged := func(needs Needs) *corev1.SecurityContext {
		ec, _ := sidecarContainer(sidecarParams{Level: LevelPrivileged, Needs: needs})
		return ec.SecurityContext
	}
	want := func(needs Needs) string {
		ec, ok := reusableSidecar(pod, sidecarWant{image: "img", container: "app", pin: "sha256:me", needs: needs}, time.Now())
		if !ok {
			return ""
		}
		return ec.Name
	}

	add("remocal-mirror", privileged(Needs{Capture: true}))
	if got := want(Needs{Redirect: true}); got != "" {
		t.Errorf("a steal session reused %s, which has no NET_ADMIN", got)
	}
	if got := want(Needs{}); got != "remocal-mirror" {
		t.Errorf("a session without incoming traffic reused %q, want remocal-mirror", got)
	}
	add("remocal-steal", privileged(Needs{Redirect: true}))
	if got := want(Needs{Redirect: true}); got != "remocal-steal" {
		t.Errorf("a steal session reused %q, want remocal-steal", got)
	}
	// The newest lacks NET_RAW: the older mirror sidecar serves a mirror session.
	if got := want(Needs{Capture: true}); got != "remocal-mirror" {
		t.Errorf("a mirror session reused %q, want remocal-mirror", got)
	}
	// An earlier version's sidecar has everything.
	add("remocal-old", &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN", "NET_RAW", "SYS_PTRACE"}}})
	if got := want(allNeeds); got != "remocal-old" {
		t.Errorf("a session needing everything reused %q, want remocal-old", got)
	}

	pod = &corev1.Pod{}
	baseline, _ := sidecarContainer(sidecarParams{Level: LevelBaseline, Needs: allNeeds})
	add("remocal-baseline", baseline.SecurityContext)
	if got := want(Needs{Redirect: true}); got != "remocal-baseline" {
		t.Errorf("under baseline clean reused %q, want remocal-baseline: a new one would get no more", got)
	}
	// A session that steals cannot use it: it goes on to the preflight, which refuses it
	// while the level forbids NET_ADMIN.
	if ec, ok := reusableSidecar(pod, sidecarWant{image: "img", container: "app", pin: "sha256:me", needs: Needs{Redirect: true}, steals: true}, time.Now()); ok {
		t.Errorf("a steal session reused %s, added under baseline", ec.Name)
	}
}
