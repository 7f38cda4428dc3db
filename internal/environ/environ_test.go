package environ

import (
	"slices"
	"testing"
)

func TestMerge(t *testing.T) {
	local := []string{"PATH=/local/bin", "HOME=/home/dev", "EDITOR=vim", "SHARED=local"}
	remote := []string{"PATH=/usr/local/sbin", "HOME=/root", "HOSTNAME=web-7d9f", "DB_PASSWORD=s3cret", "SHARED=remote", "KUBERNETES_SERVICE_HOST=198.19.0.1"}
	tests := []struct {
		name  string
		rules Rules
		want  []string
	}{
		{
			name:  "defaults keep the local toolchain and take the rest",
			rules: Rules{KeepLocal: DefaultKeepLocal()},
			want:  []string{"DB_PASSWORD=s3cret", "EDITOR=vim", "HOME=/home/dev", "HOSTNAME=web-7d9f", "KUBERNETES_SERVICE_HOST=198.19.0.1", "PATH=/local/bin", "SHARED=remote"},
		},
		{
			name:  "include narrows what comes in",
			rules: Rules{KeepLocal: DefaultKeepLocal(), Include: []string{"DB_*"}},
			want:  []string{"DB_PASSWORD=s3cret", "EDITOR=vim", "HOME=/home/dev", "PATH=/local/bin", "SHARED=local"},
		},
		{
			name:  "exclude drops matches",
			rules: Rules{KeepLocal: DefaultKeepLocal(), Exclude: []string{"KUBERNETES_*", "SHARED"}},
			want:  []string{"DB_PASSWORD=s3cret", "EDITOR=vim", "HOME=/home/dev", "HOSTNAME=web-7d9f", "PATH=/local/bin", "SHARED=local"},
		},
		{
			name:  "overrides win over both sides",
			rules: Rules{KeepLocal: DefaultKeepLocal(), Overrides: []string{"DB_PASSWORD=local-db", "PATH=/forced", "NEW=a=b"}},
			want:  []string{"DB_PASSWORD=local-db", "EDITOR=vim", "HOME=/home/dev", "HOSTNAME=web-7d9f", "KUBERNETES_SERVICE_HOST=198.19.0.1", "NEW=a=b", "PATH=/forced", "SHARED=remote"},
		},
		{
			name:  "include naming a kept-local variable takes it as well as the rest",
			rules: Rules{KeepLocal: DefaultKeepLocal(), Include: []string{"PATH"}},
			want:  []string{"DB_PASSWORD=s3cret", "EDITOR=vim", "HOME=/home/dev", "HOSTNAME=web-7d9f", "KUBERNETES_SERVICE_HOST=198.19.0.1", "PATH=/usr/local/sbin", "SHARED=remote"},
		},
		{
			name:  "an empty keep-local list takes the remote PATH too",
			rules: Rules{Include: []string{"PATH"}},
			want:  []string{"EDITOR=vim", "HOME=/home/dev", "PATH=/usr/local/sbin", "SHARED=local"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rules.Merge(local, remote); !slices.Equal(got, tt.want) {
				t.Errorf("Merge =\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}

func TestRemoteOnlyHasRemoteAndOverrides(t *testing.T) {
	r := Rules{KeepLocal: DefaultKeepLocal(), Overrides: []string{"X=1"}}
	got := r.Remote([]string{"PATH=/p", "A=b", "malformed", "=novalue"})
	if want := []string{"A=b", "X=1"}; !slices.Equal(got, want) {
		t.Fatalf("Remote = %v, want %v", got, want)
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		rules   Rules
		wantErr bool
	}{
		{Rules{Include: []string{"DB_*"}, Overrides: []string{"A=1", "B="}}, false},
		{Rules{KeepLocal: DefaultKeepLocal(), Guarded: DefaultGuarded()}, false},
		{Rules{Include: []string{"[unclosed"}}, true},
		{Rules{Exclude: []string{"[unclosed"}}, true},
		{Rules{Overrides: []string{"NOEQUALS"}}, true},
		{Rules{Overrides: []string{"=value"}}, true},
	} {
		if err := tt.rules.Validate(); (err != nil) != tt.wantErr {
			t.Errorf("Validate(%+v) = %v, wantErr %v", tt.rules, err, tt.wantErr)
		}
	}
}

// The pod's variables that would choose code to run on this machine stay out unless named.
func TestGuardedStayLocal(t *testing.T) {
	local := []string{"PATH=/local/bin", "GOFLAGS=-mod=mod"}
	remote := []string{
		"LD_PRELOAD=/evil.so", "LD_LIBRARY_PATH=/evil", "GOFLAGS=-toolexec=/evil", "GOTOOLCHAIN=go1.99", "GOPROXY=https://evil",
		"NODE_OPTIONS=--require /evil.js", "PYTHONPATH=/evil", "BASH_ENV=/evil.sh", "ENV=/evil.sh", "PROMPT_COMMAND=evil",
		"BASH_FUNC_ls%%=() { evil; }", "JAVA_TOOL_OPTIONS=-javaagent:/evil.jar", "GIT_SSH_COMMAND=evil", "CGO_LDFLAGS=-evil",
		"GOMAXPROCS=2", "GOOGLE_CLOUD_PROJECT=p", "APP_MODE=prod", "LDAP_URL=ldap://x",
	}
	guarded := Rules{KeepLocal: DefaultKeepLocal(), Guarded: DefaultGuarded()}
	tests := []struct {
		name         string
		rules        Rules
		want         []string
		wantWithheld []string
	}{
		{
			name:  "by default only the app's variables come in",
			rules: guarded,
			want:  []string{"APP_MODE=prod", "GOFLAGS=-mod=mod", "GOMAXPROCS=2", "GOOGLE_CLOUD_PROJECT=p", "LDAP_URL=ldap://x", "PATH=/local/bin"},
			wantWithheld: []string{"BASH_ENV", "BASH_FUNC_ls%%", "CGO_LDFLAGS", "ENV", "GIT_SSH_COMMAND", "GOFLAGS", "GOPROXY", "GOTOOLCHAIN",
				"JAVA_TOOL_OPTIONS", "LD_LIBRARY_PATH", "LD_PRELOAD", "NODE_OPTIONS", "PROMPT_COMMAND", "PYTHONPATH"},
		},
		{
			name:  "--env-include NAME takes one on purpose, and narrows nothing",
			rules: Rules{KeepLocal: DefaultKeepLocal(), Guarded: DefaultGuarded(), Include: []string{"GOFLAGS"}},
			want:  []string{"APP_MODE=prod", "GOFLAGS=-toolexec=/evil", "GOMAXPROCS=2", "GOOGLE_CLOUD_PROJECT=p", "LDAP_URL=ldap://x", "PATH=/local/bin"},
			wantWithheld: []string{"BASH_ENV", "BASH_FUNC_ls%%", "CGO_LDFLAGS", "ENV", "GIT_SSH_COMMAND", "GOPROXY", "GOTOOLCHAIN",
				"JAVA_TOOL_OPTIONS", "LD_LIBRARY_PATH", "LD_PRELOAD", "NODE_OPTIONS", "PROMPT_COMMAND", "PYTHONPATH"},
		},
		{
			name:         "a glob does not take a guarded variable",
			rules:        Rules{KeepLocal: DefaultKeepLocal(), Guarded: DefaultGuarded(), Include: []string{"*", "LD_*"}, Exclude: []string{"B*", "C*", "E*", "G*", "J*", "N*", "P*"}},
			want:         []string{"APP_MODE=prod", "GOFLAGS=-mod=mod", "LDAP_URL=ldap://x", "PATH=/local/bin"},
			wantWithheld: []string{"LD_LIBRARY_PATH", "LD_PRELOAD"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rules.Merge(local, remote); !slices.Equal(got, tt.want) {
				t.Errorf("Merge =\n%v\nwant\n%v", got, tt.want)
			}
			if got := tt.rules.Withheld(remote); !slices.Equal(got, tt.wantWithheld) {
				t.Errorf("Withheld =\n%v\nwant\n%v", got, tt.wantWithheld)
			}
		})
	}
}

func TestLocalHasOnlyTheOverrides(t *testing.T) {
	r := Rules{Guarded: DefaultGuarded(), Overrides: []string{"CGO_ENABLED=0"}}
	if got, want := r.Local([]string{"PATH=/p", "GOFLAGS=-mod=mod"}), []string{"CGO_ENABLED=0", "GOFLAGS=-mod=mod", "PATH=/p"}; !slices.Equal(got, want) {
		t.Fatalf("Local = %v, want %v", got, want)
	}
}
