package environ

import (
	"slices"
	"testing"
)

func TestChanged(t *testing.T) {
	before := []string{"GREETING=hello", "SAME=1", "GONE=x", "PATH=/usr/bin", "DROPPED=a"}
	after := []string{"GREETING=hi", "SAME=1", "NEW=y", "PATH=/usr/local/bin", "DROPPED=b"}
	rules := Rules{KeepLocal: DefaultKeepLocal(), Exclude: []string{"DROPPED"}}
	// PATH stays local and DROPPED is excluded: the program never had them from the pod.
	if got, want := rules.Changed(before, after), []string{"GONE", "GREETING", "NEW"}; !slices.Equal(got, want) {
		t.Errorf("Changed = %q, want %q", got, want)
	}
	if got := rules.Changed(before, before); len(got) != 0 {
		t.Errorf("Changed of the same = %q, want none", got)
	}
}
