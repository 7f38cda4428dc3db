package main

import (
	"fmt"
	"io"
	"os"
)

// listDir prints the names in dir, one per line, sorted, dot-files included: what `ls -a`
// prints but for . and ..
func listDir(w io.Writer, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, err := fmt.Fprintln(w, e.Name()); err != nil {
			return err
		}
	}
	return nil
}
