package layer

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestShadowing(t *testing.T) {
	dir := t.TempDir()
	program := filepath.Join(dir, "bin", "app")
	if err := os.MkdirAll(filepath.Dir(program), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(program, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	// A local symlink that leads into /usr: a mount there would land in /usr.
	link := filepath.Join(dir, "tools")
	if err := os.Symlink("/usr/share", link); err != nil {
		t.Fatal(err)
	}
	paths := []string{
		"/etc/ld.so.preload", "/etc/ld.so.conf.d/x.conf", "/etc", "/", "/usr", "/usr/local/lib", "/lib64", "/bin/sh", "/proc/self",
		filepath.Join(dir, "bin"), link + "/doc", filepath.Join(dir, "bin", "app"),
		"/etc/alternatives/java", "/etc/profile.d/app.sh", "/nix/store",
		"/etc/hosts", "/etc/resolv.conf", "/etc/app", "/var/run/secrets/kubernetes.io/serviceaccount", filepath.Join(dir, "data"), "/usrdata", "/etc/ld.so.preloaded", "/opt/app/config",
	}
	got := Shadowing(paths, program)
	want := paths[:15]
	if !slices.Equal(got, want) {
		t.Fatalf("Shadowing =\n%v\nwant\n%v", got, want)
	}
}

// The layer itself refuses what the plugin should have left out.
func TestNewRefusesFilesOverSystemPaths(t *testing.T) {
	for _, cfg := range []Config{
		{Files: map[string][]byte{"/etc/ld.so.preload": []byte("/tmp/evil.so\n")}},
		{Mounts: []Mount{{Path: "/usr/lib", Serve: func(context.Context, *os.File) {}}}},
	} {
		if s, err := New(cfg); err == nil {
			s.Close()
			t.Errorf("New(%v) served over a system path", cfg)
		}
	}
}
