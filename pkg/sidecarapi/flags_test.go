package sidecarapi

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFlagsRoundTrip(t *testing.T) {
	tests := []Flags{
		{ClientPin: "sha256:ab", Port: 45000, TTL: time.Minute, MaxLifetime: 12 * time.Hour, Direct: true, Name: "remocal-x1y2z"},
		{ClientPin: "sha256:cd", Port: 1, TTL: 90 * time.Second, MaxLifetime: time.Hour},
		NewFlags(),
	}
	for _, want := range tests {
		args := want.Args()
		got, err := ParseArgs(args)
		if err != nil {
			t.Fatalf("ParseArgs(%q) = %v", args, err)
		}
		if got != want {
			t.Errorf("ParseArgs(%q) = %+v, want %+v", args, got, want)
		}
		// The sidecar parses them with the flag package, from its defaults.
		parsed := NewFlags()
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		parsed.AddFlags(fs)
		if err := fs.Parse(args); err != nil || parsed != want {
			t.Errorf("the sidecar parses %q as %+v (%v), want %+v", args, parsed, err, want)
		}
	}
}

// The command line in the pod spec stays as it was: kubectl describe shows it, and older
// plugins read it back.
func TestFlagsArgs(t *testing.T) {
	f := Flags{ClientPin: "sha256:ab", Port: 45000, TTL: time.Minute, MaxLifetime: 12 * time.Hour, Direct: true, Name: "remocal-abcde"}
	want := []string{"--client-pin=sha256:ab", "--port=45000", "--ttl=1m0s", "--max-lifetime=12h0m0s", "--direct=true", "--name=remocal-abcde"}
	if got := f.Args(); !slices.Equal(got, want) {
		t.Errorf("Args() = %q, want %q", got, want)
	}
}

// A flag AddFlags defines but Args forgets would silently never reach a sidecar.
func TestArgsWritesEveryFlag(t *testing.T) {
	var f Flags
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f.AddFlags(fs)
	written := map[string]bool{}
	for _, arg := range f.Args() {
		name, _, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		written[name] = true
	}
	fs.VisitAll(func(fl *flag.Flag) {
		if !written[fl.Name] {
			t.Errorf("Args does not write --%s", fl.Name)
		}
	})
	if n := len(written); n != countFlags(fs) {
		t.Errorf("Args writes %d flags, AddFlags defines %d", n, countFlags(fs))
	}
}

func countFlags(fs *flag.FlagSet) int {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    Flags
		wantErr string
	}{
		{name: "none", want: Flags{}},
		{name: "older sidecar: no max lifetime, no name", args: []string{"--client-pin=sha256:ab", "--port=45000", "--ttl=10m0s", "--direct=true"},
			want: Flags{ClientPin: "sha256:ab", Port: 45000, TTL: 10 * time.Minute, Direct: true}},
		{name: "newer sidecar: unknown flags ignored", args: []string{"--client-pin=sha256:ab", "--lane=blue", "--port=7", "--flag-of-tomorrow"},
			want: Flags{ClientPin: "sha256:ab", Port: 7}},
		{name: "bare boolean", args: []string{"--direct"}, want: Flags{Direct: true}},
		{name: "direct false", args: []string{"--direct=false", "--port=7"}, want: Flags{Port: 7}},
		{name: "flags end at --", args: []string{"--port=7", "--", "--client-pin=sha256:ab"}, want: Flags{Port: 7}},
		{name: "a bad value leaves the others", args: []string{"--port=x", "--client-pin=sha256:ab", "--ttl=1m"},
			want: Flags{ClientPin: "sha256:ab", TTL: time.Minute}, wantErr: `invalid value "x" for flag -port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseArgs(tt.args)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("ParseArgs(%q) error = %v, want %q", tt.args, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseArgs(%q) = %+v, want %+v", tt.args, got, tt.want)
			}
		})
	}
}

func TestAddFlagsDefaults(t *testing.T) {
	tests := []struct {
		name         string
		args         []string
		wantTTL      time.Duration
		wantLifetime time.Duration
	}{
		{name: "default", args: nil, wantTTL: DefaultTTL, wantLifetime: DefaultMaxLifetime},
		{name: "double dash", args: []string{"--ttl", "30s"}, wantTTL: 30 * time.Second, wantLifetime: DefaultMaxLifetime},
		{name: "equals", args: []string{"-ttl=1h", "--max-lifetime=2h"}, wantTTL: time.Hour, wantLifetime: 2 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFlags()
			fs := flag.NewFlagSet("remocal-sidecar", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			f.AddFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatalf("Parse(%q) = %v", tt.args, err)
			}
			if f.TTL != tt.wantTTL || f.MaxLifetime != tt.wantLifetime {
				t.Errorf("TTL = %s, max lifetime %s; want %s, %s", f.TTL, f.MaxLifetime, tt.wantTTL, tt.wantLifetime)
			}
		})
	}
}

func TestSplitUnknownFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f := NewFlags()
	f.AddFlags(fs)
	args := []string{"--client-pin=sha256:ab", "--from-a-newer-plugin=x", "-port=7", "--ttl=1m", "--flag-of-tomorrow", "--", "--name=after-dashes"}
	known, unknown := SplitUnknownFlags(fs, args)
	if want := []string{"--client-pin=sha256:ab", "-port=7", "--ttl=1m", "--", "--name=after-dashes"}; !slices.Equal(known, want) {
		t.Errorf("known = %q, want %q", known, want)
	}
	if want := []string{"--from-a-newer-plugin=x", "--flag-of-tomorrow"}; !slices.Equal(unknown, want) {
		t.Errorf("unknown = %q, want %q", unknown, want)
	}
	if err := fs.Parse(known); err != nil {
		t.Fatalf("the known flags do not parse: %v", err)
	}
	if f.Port != 7 || f.ClientPin != "sha256:ab" {
		t.Errorf("parsed %+v", f)
	}
}
