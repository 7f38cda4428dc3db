//go:build linux

package seccomp

import "testing"

func TestAtLeast(t *testing.T) {
	for release, want := range map[string]bool{
		"6.18.44-fc-v769": true,
		"5.9.0":           true,
		"5.10.0-28-amd64": true,
		"5.8.18":          false,
		"4.19.0-26-amd64": false,
		"garbage":         true,
	} {
		if got := atLeast(release, 5, 9); got != want {
			t.Errorf("atLeast(%q, 5, 9) = %v, want %v", release, got, want)
		}
	}
}

func TestFilterAssembles(t *testing.T) {
	prog, err := Filter([]Trap{{Nr: 42, NonZeroArg: -1}, {Nr: 44, NonZeroArg: 4}})
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) < 10 {
		t.Fatalf("program of %d instructions", len(prog))
	}
}
