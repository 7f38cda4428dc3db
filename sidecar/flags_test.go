package sidecar

import (
	"flag"
	"slices"
	"testing"
)

func TestSplitUnknownFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	cfg := NewConfig()
	cfg.AddFlags(fs)
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
	if cfg.Port != 7 || cfg.ClientPin != "sha256:ab" {
		t.Errorf("parsed %+v", cfg)
	}
}
