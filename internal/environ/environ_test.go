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
