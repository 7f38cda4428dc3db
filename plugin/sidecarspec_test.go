package plugin

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSidecarContainerBySecurityLevel(t *testing.T) {
	uid := int64(1000)
	tests := []struct {
		level       podSecurityLevel
		user        *int64
		wantCaps    []corev1.Capability
		wantUser    *int64
		wantNonRoot bool
		wantLost    int
	}{
		{level: psaPrivileged, wantCaps: []corev1.Capability{"NET_ADMIN", "NET_RAW", "SYS_PTRACE"}, wantUser: new(int64)},
		{level: psaBaseline, wantCaps: nil, wantUser: new(int64), wantLost: 1},
		{level: psaRestricted, user: &uid, wantCaps: nil, wantUser: &uid, wantNonRoot: true, wantLost: 1},
		{level: psaRestricted, wantCaps: nil, wantNonRoot: true, wantLost: 2},
	}
	for _, tt := range tests {
		t.Run(string(tt.level), func(t *testing.T) {
			ec, lost := sidecarContainer(sidecarParams{
				Image: "img", Target: "app", ClientPin: "sha256:ab", Port: 45000, TTL: time.Minute, Lifetime: 12 * time.Hour,
				Level: tt.level, RunAsUser: tt.user,
			})
			sc := ec.SecurityContext
			if tt.level == psaBaseline {
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
			if pin, _ := sidecarArg(ec.Args, "client-pin"); pin != "sha256:ab" {
				t.Errorf("client-pin arg = %q", pin)
			}
			if lifetime, _ := sidecarArg(ec.Args, "max-lifetime"); lifetime != "12h0m0s" {
				t.Errorf("max-lifetime arg = %q", lifetime)
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
	ec, ok := reusableSidecar(pod, "img:1", "app", "sha256:me", false, time.Now())
	if !ok || ec.Name != "remocal-good1" {
		t.Fatalf("reusableSidecar = %q, %v; want remocal-good1", ec.Name, ok)
	}
	if port, err := sidecarPort(ec); err != nil || port != 45000 {
		t.Fatalf("sidecarPort = %d, %v", port, err)
	}
	if _, ok := reusableSidecar(pod, "img:1", "other-container", "sha256:me", false, time.Now()); ok {
		t.Fatal("reused a sidecar that targets another container")
	}
	if _, ok := reusableSidecar(pod, "img:1", "app", "sha256:me", true, time.Now()); ok {
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
		if _, ok := reusableSidecar(tt.pod, "img", "app", "sha256:me", false, now); ok != tt.want {
			t.Errorf("%s: reused = %v, want %v", tt.name, ok, tt.want)
		}
	}
}
