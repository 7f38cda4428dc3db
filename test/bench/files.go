package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// filesArg makes this binary the program that writes or reads files under the layer.
const filesArg = "files"

// benchDataDir is the emptyDir volume of the bench pod's first container.
const benchDataDir = "/data"

// The file sets measured: what the issue names.
const (
	smallFiles    = 1000
	smallFileSize = 256
	reads4K       = 300
	reads1M       = 30
)

// remoteFiles measures open+read+close of the pod's files against the same reads of local
// files, both by one program under the layer: a 4 KiB file (p50, p99), a 1 MiB file (p50), and
// 1,000 small files read one after the other (total).
func (b *bench) remoteFiles(ctx context.Context, pod *corev1.Pod) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	local := filepath.Join(b.work, "files")
	if err := writeFileSet(local); err != nil {
		return err
	}
	remocal := func(extra ...string) ([]byte, error) {
		args := append([]string{"-n", namespace, "exec", "pod/" + pod.Name, "--sidecar-image", b.image}, extra...)
		cmd := exec.CommandContext(ctx, b.plugin, args...)
		cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(b.work, "cold-0"))
		out, err := cmd.Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return out, err
	}
	if _, err := remocal("--fs-mode", "write", "--", self, filesArg, "write", benchDataDir); err != nil {
		return fmt.Errorf("write the pod's files: %w", err)
	}
	out, err := remocal("--", self, filesArg, "read", benchDataDir, local)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	figures := map[string][2]float64{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			return fmt.Errorf("the reader said %q", out)
		}
		remote, err1 := strconv.ParseFloat(f[1], 64)
		localV, err2 := strconv.ParseFloat(f[2], 64)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		figures[f[0]] = [2]float64{remote, localV}
	}
	what := "local files, same program under the layer"
	for _, r := range []struct{ key, name, unit string }{
		{"4k-p50", "remote file 4 KiB open+read+close, p50", "ms"},
		{"4k-p99", "remote file 4 KiB open+read+close, p99", "ms"},
		{"1m-p50", "remote file 1 MiB open+read+close, p50", "ms"},
		{"small-total", "1,000 remote files of 256 B in sequence", "ms"},
	} {
		v, ok := figures[r.key]
		if !ok {
			return fmt.Errorf("the reader did not report %s: %q", r.key, out)
		}
		row(r.name, v[0], v[1], r.unit, what)
	}
	return nil
}

// filesMain is this binary under the layer: "write DIR" makes the file set in DIR, "read
// REMOTE LOCAL" times reads of both sets and prints "name remote local" lines in ms.
func filesMain(args []string) error {
	switch {
	case len(args) == 2 && args[0] == "write":
		return writeFileSet(args[1])
	case len(args) == 3 && args[0] == "read":
		return readFileSets(args[1], args[2])
	}
	return errors.New("usage: files write DIR | files read REMOTE LOCAL")
}

func writeFileSet(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "small"), 0o755); err != nil {
		return err
	}
	for name, size := range map[string]int{"4k": 4 << 10, "1m": 1 << 20} {
		if err := os.WriteFile(filepath.Join(dir, name), randomBytes(size), 0o644); err != nil {
			return err
		}
	}
	for i := range smallFiles {
		if err := os.WriteFile(filepath.Join(dir, "small", strconv.Itoa(i)), randomBytes(smallFileSize), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func readFileSets(remote, local string) error {
	type set struct {
		name string
		run  func(dir string) ([]time.Duration, error)
	}
	timesOf := func(file string, n int) func(dir string) ([]time.Duration, error) {
		return func(dir string) ([]time.Duration, error) {
			var times []time.Duration
			for range n {
				start := time.Now()
				if _, err := os.ReadFile(filepath.Join(dir, file)); err != nil {
					return nil, err
				}
				times = append(times, time.Since(start))
			}
			return times, nil
		}
	}
	sequence := func(dir string) ([]time.Duration, error) {
		start := time.Now()
		for i := range smallFiles {
			if _, err := os.ReadFile(filepath.Join(dir, "small", strconv.Itoa(i))); err != nil {
				return nil, err
			}
		}
		return []time.Duration{time.Since(start)}, nil
	}
	results := map[string][2][]time.Duration{}
	// Remote then local, set by set, so both see the same moment of a noisy machine.
	for _, s := range []set{{"4k", timesOf("4k", reads4K)}, {"1m", timesOf("1m", reads1M)}, {"small", sequence}} {
		var pair [2][]time.Duration
		for i, dir := range []string{remote, local} {
			times, err := s.run(dir)
			if err != nil {
				return err
			}
			pair[i] = times
		}
		results[s.name] = pair
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	q := func(times []time.Duration, p float64) float64 {
		s := append([]time.Duration(nil), times...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return ms(s[int(p*float64(len(s)-1))])
	}
	r := results["4k"]
	fmt.Printf("4k-p50 %.3f %.3f\n", q(r[0], 0.5), q(r[1], 0.5))
	fmt.Printf("4k-p99 %.3f %.3f\n", q(r[0], 0.99), q(r[1], 0.99))
	r = results["1m"]
	fmt.Printf("1m-p50 %.3f %.3f\n", q(r[0], 0.5), q(r[1], 0.5))
	r = results["small"]
	fmt.Printf("small-total %.3f %.3f\n", ms(r[0][0]), ms(r[1][0]))
	return nil
}
