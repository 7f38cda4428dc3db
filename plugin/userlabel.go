package plugin

import (
	"fmt"
	"os"
	"os/user"
	"strings"
	"unicode"
	"unicode/utf8"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/klog/v2"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// A session's user label: who the session is, in the sidecar's listing of its sessions (ls),
// which other users of the pod read.

// userLabelUsage is the help of --user-label.
const userLabelUsage = "who you are in the sidecar's list of sessions, which ls shows to the pod's other users (default: the kubeconfig user, else USER@HOST)"

// userLabel is the label of the command's sessions: --user-label, else the kubeconfig user,
// else USER@HOST. The defaults are made to fit (wire.CheckLabel); a --user-label that does
// not is refused by Validate.
func (f *attachFlags) userLabel() string {
	if f.UserLabel != "" {
		return f.UserLabel
	}
	if u := kubeconfigUser(f.configFlags); u != "" {
		return fitLabel(u)
	}
	return fitLabel(localUser(os.Getenv, os.Hostname, user.Current))
}

// validateUserLabel refuses a --user-label that the sidecar would refuse.
func validateUserLabel(label string) error {
	if err := wire.CheckLabel(label); err != nil {
		return fmt.Errorf("--user-label %q: at most %d bytes of printable characters (no control or formatting characters)", label, wire.MaxLabelLen)
	}
	return nil
}

// kubeconfigUser is the user (AuthInfo) name of the context the command uses: --user, else
// the user of --context or the current context. "" when there is none, or no kubeconfig.
func kubeconfigUser(flags *genericclioptions.ConfigFlags) string {
	if flags.AuthInfoName != nil && *flags.AuthInfoName != "" {
		return *flags.AuthInfoName
	}
	raw, err := flags.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		klog.V(1).Infof("no kubeconfig user for the session's label: %v", err)
		return ""
	}
	name := raw.CurrentContext
	if flags.Context != nil && *flags.Context != "" {
		name = *flags.Context
	}
	if c, ok := raw.Contexts[name]; ok {
		return c.AuthInfo
	}
	return ""
}

// localUser is USER@HOST of this machine, from $USER (else the account's name) and the host
// name; either may be missing.
func localUser(getenv func(string) string, hostname func() (string, error), current func() (*user.User, error)) string {
	name := getenv("USER")
	if name == "" {
		if u, err := current(); err == nil {
			name = u.Username
		}
	}
	host, _ := hostname()
	switch {
	case name == "":
		return host
	case host == "":
		return name
	}
	return name + "@" + host
}

// fitLabel makes s a label the wire carries: what does not print becomes '?', and a label
// too long is cut on a rune boundary.
func fitLabel(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	for len(s) > wire.MaxLabelLen {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
