package main

import (
	"archive/tar"
	"errors"
	"io"
	"testing"
)

// readTarFile returns the contents of the entry called name in the tar r.
func readTarFile(t *testing.T, r io.Reader, name string) string {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("no %s in tar", name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name != name {
			continue
		}
		if hdr.Mode != 0o755 {
			t.Errorf("%s mode = %#o, want 0755", name, hdr.Mode)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}
