package mounts

import "testing"

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/plain":         "/var/lib/plain",
		`/var/lib/with\040space`: "/var/lib/with space",
		`/trailing\`:             `/trailing\`,
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnderFindsRootMount(t *testing.T) {
	points, err := Under("/")
	if err != nil {
		t.Fatal(err)
	}
	if len(points) == 0 || points[len(points)-1] != "/" {
		t.Fatalf("Under(/) = %v, want / last (deepest first)", points)
	}
}
