package plugin

import (
	"errors"
	"strings"
	"testing"

	"github.com/remocal/kubectl-remocal/plugin/internal/attach"
)

// rows indexes checks by name.
func rows(checks []check) map[string]check {
	m := map[string]check{}
	for _, c := range checks {
		m[c.Name] = c
	}
	return m
}

func TestSecurityChecksByLevel(t *testing.T) {
	uid := int64(1000)
	tests := []struct {
		name       string
		nl         attach.NamespaceLevel
		haveTarget bool
		user       *int64
		// want is the status of each row; wantIn, words each row's detail must hold.
		want   map[string]checkStatus
		wantIn map[string][]string
	}{
		{
			name: "privileged by label: everything",
			nl:   attach.NamespaceLevel{Level: attach.LevelPrivileged, Labelled: true},
			want: map[string]checkStatus{"pod security": statusOK, "sidecar rights": statusOK, "steal/mirror": statusOK},
			wantIn: map[string][]string{
				"pod security":   {"privileged", "label pod-security.kubernetes.io/enforce"},
				"sidecar rights": {"root", "NET_ADMIN, NET_RAW and SYS_PTRACE"},
				"steal/mirror":   {"NET_ADMIN"},
			},
		},
		{
			name: "no label: the cluster default, privileged",
			nl:   attach.NamespaceLevel{Level: attach.LevelPrivileged},
			want: map[string]checkStatus{"pod security": statusOK, "sidecar rights": statusOK, "steal/mirror": statusOK},
			wantIn: map[string][]string{
				"pod security": {"no pod-security.kubernetes.io/enforce label", "cluster's default"},
			},
		},
		{
			name: "namespace unreadable: assumed privileged, said so",
			nl:   attach.NamespaceLevel{Level: attach.LevelPrivileged, Unread: errors.New("forbidden")},
			want: map[string]checkStatus{"pod security": statusWarn, "sidecar rights": statusOK, "steal/mirror": statusOK},
			wantIn: map[string][]string{
				"pod security": {"assumed privileged", "forbidden"},
			},
		},
		{
			name: "baseline: no steal or mirror, and why",
			nl:   attach.NamespaceLevel{Level: attach.LevelBaseline, Labelled: true},
			want: map[string]checkStatus{"pod security": statusOK, "sidecar rights": statusOK, "steal/mirror": statusWarn},
			wantIn: map[string][]string{
				"sidecar rights": {"root", "default capabilities", "SYS_PTRACE"},
				"steal/mirror":   {"unavailable", "NET_ADMIN", "baseline", "environment, outgoing traffic and files still work"},
			},
		},
		{
			name:       "restricted, target's user known",
			nl:         attach.NamespaceLevel{Level: attach.LevelRestricted, Labelled: true},
			haveTarget: true,
			user:       &uid,
			want:       map[string]checkStatus{"pod security": statusOK, "sidecar rights": statusOK, "steal/mirror": statusWarn},
			wantIn: map[string][]string{
				"sidecar rights": {"user 1000, the target's", "no capabilities"},
				"steal/mirror":   {"NET_ADMIN", "restricted"},
			},
		},
		{
			name:       "restricted, target's user not in the spec: no environment either",
			nl:         attach.NamespaceLevel{Level: attach.LevelRestricted, Labelled: true},
			haveTarget: true,
			want:       map[string]checkStatus{"pod security": statusOK, "sidecar rights": statusWarn, "steal/mirror": statusWarn},
			wantIn: map[string][]string{
				"sidecar rights": {"environment and files of the target", "its user is not set"},
			},
		},
		{
			name: "restricted without a TARGET: what the target needs",
			nl:   attach.NamespaceLevel{Level: attach.LevelRestricted, Labelled: true},
			want: map[string]checkStatus{"pod security": statusOK, "sidecar rights": statusOK, "steal/mirror": statusWarn},
			wantIn: map[string][]string{
				"sidecar rights": {"must set runAsUser"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rows(securityChecks("shop", tt.nl, tt.haveTarget, tt.user))
			if len(got) != len(tt.want) {
				t.Fatalf("rows %v, want %v", got, tt.want)
			}
			for name, status := range tt.want {
				c := got[name]
				if c.Status != status {
					t.Errorf("%s: status %s, want %s (%s)", name, c.Status, status, c.Detail)
				}
				if (c.Status == statusWarn || c.Status == statusFail) && c.Fix == "" {
					t.Errorf("%s: %s without a fix", name, c.Status)
				}
			}
			for name, words := range tt.wantIn {
				for _, w := range words {
					if !strings.Contains(got[name].Detail, w) {
						t.Errorf("%s: detail %q lacks %q", name, got[name].Detail, w)
					}
				}
			}
		})
	}
}
