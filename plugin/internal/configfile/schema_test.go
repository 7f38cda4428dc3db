package configfile

import (
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestDurationPattern(t *testing.T) {
	re := regexp.MustCompile(durationPattern)
	for _, s := range []string{"90s", "1h30m", "1.5h", "0", "300ms", "2us", "-1m", ".5s"} {
		if _, err := time.ParseDuration(s); err != nil {
			t.Fatalf("bad test value %q: %v", s, err)
		}
		if !re.MatchString(s) {
			t.Errorf("the pattern refuses %q, which time.ParseDuration reads", s)
		}
	}
	for _, s := range []string{"10", "1d", "soon", "", "1h 30m"} {
		if re.MatchString(s) {
			t.Errorf("the pattern allows %q", s)
		}
	}
}

// A key's description is its flag's usage, looked up on the command that owns the key; a key
// without a flag keeps its doc tag.
func TestDescriptionIsTheFlagsUsage(t *testing.T) {
	flags := pflag.NewFlagSet("exec", pflag.ContinueOnError)
	flags.StringP("container", "c", "", "container of the pod to act as")
	flags.StringArray("fs-remote", nil, "also show the pod's files at this path or glob (repeatable)")
	var asked []string
	lookup := func(cmd, name string) *pflag.Flag {
		asked = append(asked, cmd+" "+name)
		return flags.Lookup(name)
	}
	tests := []struct {
		key  Key
		cmd  string
		want string
	}{
		{Key{Name: "container", Flag: "container"}, "", "Container of the pod to act as (-c, --container)."},
		{Key{Name: "fs-remote", Flag: "fs-remote", Cmd: "exec"}, "exec", "Also show the pod's files at this path or glob (--fs-remote)."},
		{Key{Name: "target", Doc: "The workload."}, "", "The workload."},
	}
	for _, tt := range tests {
		if got := Description(tt.key, tt.cmd, lookup); got != tt.want {
			t.Errorf("Description(%s) = %q, want %q", tt.key.Name, got, tt.want)
		}
	}
	if want := []string{" container", "exec fs-remote"}; !slices.Equal(asked, want) {
		t.Errorf("looked up %q, want %q", asked, want)
	}
}
