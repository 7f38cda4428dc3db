package configfile

import (
	"reflect"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func TestConfigPath(t *testing.T) {
	env := func(v string) func(string) string {
		return func(name string) string {
			if name == Env {
				return v
			}
			return ""
		}
	}
	tests := []struct {
		name          string
		args          []string
		env           string
		path, namedBy string
	}{
		{name: "working directory", path: ".remocal.yaml"},
		{name: "environment", env: "/etc/r.yaml", path: "/etc/r.yaml", namedBy: "$REMOCAL_CONFIG"},
		{name: "flag over environment", args: []string{"--config", "my.yaml"}, env: "/etc/r.yaml", path: "my.yaml", namedBy: "--config"},
		{name: "none", args: []string{"--config="}, env: "/etc/r.yaml", path: "", namedBy: "--config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flags := pflag.NewFlagSet("t", pflag.ContinueOnError)
			cmd := &cobra.Command{}
			AddFlag(cmd)
			flags.AddFlagSet(cmd.Flags())
			if err := flags.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			path, namedBy := Path(flags, env(tt.env))
			if path != tt.path || namedBy != tt.namedBy {
				t.Errorf("Path = %q, %q; want %q, %q", path, namedBy, tt.path, tt.namedBy)
			}
		})
	}
}

// A key the applier cannot turn into flag values panics here rather than in a session.
func TestFlagValuesOfEveryKey(t *testing.T) {
	var check func(keys []Key)
	check = func(keys []Key) {
		for _, k := range keys {
			if k.Section != nil {
				check(k.Section)
				continue
			}
			flagValues(reflect.New(k.typ).Elem())
		}
	}
	check(Keys())
}
