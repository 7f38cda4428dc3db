package plugin

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

func TestUserLabelDefaults(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	config := `apiVersion: v1
kind: Config
clusters:
- {name: a, cluster: {server: "https://198.18.0.1:6443"}}
users:
- {name: alice, user: {}}
- {name: "arn:aws:iam::111122223333:role/dev", user: {}}
contexts:
- {name: dev, context: {cluster: a, user: alice}}
- {name: eks, context: {cluster: a, user: "arn:aws:iam::111122223333:role/dev"}}
- {name: nobody, context: {cluster: a}}
current-context: dev
`
	if err := os.WriteFile(kubeconfig, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", "")
	t.Setenv("USER", "carol")
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	label := func(flag, context, authInfo string) string {
		flags := genericclioptions.NewConfigFlags(false)
		flags.KubeConfig = &kubeconfig
		flags.Context, flags.AuthInfoName = &context, &authInfo
		f := attachFlags{configFlags: flags, UserLabel: flag}
		return f.userLabel()
	}
	tests := []struct {
		name, flag, context, authInfo, want string
	}{
		{name: "the current context's user", want: "alice"},
		{name: "--context's user", context: "eks", want: "arn:aws:iam::111122223333:role/dev"},
		{name: "--user", context: "eks", authInfo: "bob", want: "bob"},
		{name: "--user-label wins", flag: "alice on her laptop", want: "alice on her laptop"},
		{name: "a context without a user", context: "nobody", want: "carol@" + host},
		{name: "an unknown context", context: "gone", want: "carol@" + host},
	}
	for _, tt := range tests {
		if got := label(tt.flag, tt.context, tt.authInfo); got != tt.want {
			t.Errorf("%s: label %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestLocalUser(t *testing.T) {
	env := func(user string) func(string) string { return func(string) string { return user } }
	host := func(name string, err error) func() (string, error) {
		return func() (string, error) { return name, err }
	}
	account := func(name string) func() (*user.User, error) {
		return func() (*user.User, error) {
			if name == "" {
				return nil, errors.New("no account")
			}
			return &user.User{Username: name}, nil
		}
	}
	tests := []struct {
		name, want string
		getenv     func(string) string
		hostname   func() (string, error)
		current    func() (*user.User, error)
	}{
		{name: "USER and host", getenv: env("carol"), hostname: host("laptop", nil), current: account("root"), want: "carol@laptop"},
		{name: "no USER: the account", getenv: env(""), hostname: host("laptop", nil), current: account("dave"), want: "dave@laptop"},
		{name: "no host", getenv: env("carol"), hostname: host("", errors.New("no name")), current: account(""), want: "carol"},
		{name: "neither user", getenv: env(""), hostname: host("laptop", nil), current: account(""), want: "laptop"},
	}
	for _, tt := range tests {
		if got := localUser(tt.getenv, tt.hostname, tt.current); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestFitLabel: a default label from a kubeconfig or the host always travels: whatever does
// not print is replaced, and one too long is cut on a rune boundary.
func TestFitLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice", "alice"},
		{"zoë 開発", "zoë 開発"},
		{"\x1b[31mred", "?[31mred"},
		{"a\nb\tc", "a?b?c"},
		{"bidi\u202eoverride", "bidi?override"},
		{"bad \xff utf-8", "bad ? utf-8"},
		{strings.Repeat("x", wire.MaxLabelLen+10), strings.Repeat("x", wire.MaxLabelLen)},
		{strings.Repeat("x", wire.MaxLabelLen-1) + "é", strings.Repeat("x", wire.MaxLabelLen-1)},
	}
	for _, tt := range tests {
		got := fitLabel(tt.in)
		if got != tt.want {
			t.Errorf("fitLabel(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if err := wire.CheckLabel(got); err != nil {
			t.Errorf("fitLabel(%q) = %q, which the wire refuses: %v", tt.in, got, err)
		}
	}
}

func TestValidateUserLabel(t *testing.T) {
	for _, ok := range []string{"", "alice", "alice@laptop", "zoë 開発", strings.Repeat("l", wire.MaxLabelLen)} {
		if err := validateUserLabel(ok); err != nil {
			t.Errorf("validateUserLabel(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"\x1b[2J", "two\nlines", "rtl\u202e", strings.Repeat("l", wire.MaxLabelLen+1)} {
		if err := validateUserLabel(bad); err == nil || !strings.HasPrefix(err.Error(), "--user-label ") {
			t.Errorf("validateUserLabel(%q) = %v, want a refusal naming the flag", bad, err)
		}
	}
}
