package plugin

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/remocal/kubectl-remocal/plugin/internal/configfile"
)

// A configuration file found in the working directory may have come with a cloned repository:
// its keys that choose the cluster, the image that runs, what is written or where a file goes
// (the trust tag of configfile.File) are taken only when the user has trusted that very content.
// A file named by --config or $REMOCAL_CONFIG is the user's choice and needs no trust.
//
// Left out on purpose: namespace and target (the cluster is the user's own context, its RBAC
// bounds them, and the session names its target first), transport (the same pod either way,
// and the link only serves the user's key), and env (the command that reads it is the user's).

// trustStoreName is the file, in userDir, that lists the trusted configuration files: one line
// each, the SHA-256 of its content and its absolute path, as sha256sum prints them, so that
// `sha256sum -c` checks them too.
const trustStoreName = "trusted-configs"

// needsTrust tells whether a's values may come only from a trusted file.
func needsTrust(a configfile.Assignment) bool {
	switch {
	case a.Key.Trust == "":
		return false
	case a.Path == "fs-mode":
		return slices.Contains(a.Values, fsModeWrite)
	case a.Path == "port-forward.local":
		return slices.ContainsFunc(a.Values, listensBeyondLoopback)
	}
	return true
}

// listensBeyondLoopback tells whether the -L rule spec listens on more than this machine's
// loopback. A rule that does not parse fails as the flag's error, later.
func listensBeyondLoopback(spec string) bool {
	f, err := parseForward(spec)
	if err != nil {
		return false
	}
	host, _, _ := net.SplitHostPort(f.listen)
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// checkTrust refuses, in one line, a discovered file whose plan sets a key that needs trust,
// unless the user trusted the file with this content.
func checkTrust(file string, data []byte, plan []configfile.Assignment) error {
	var keys []configfile.Assignment
	for _, a := range plan {
		if needsTrust(a) {
			keys = append(keys, a)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	store, err := defaultTrustStore()
	if err != nil {
		return err
	}
	state, err := store.state(file, data)
	if err != nil {
		return err
	}
	if state == trusted {
		return nil
	}
	why := "it was found in the working directory"
	if state == changed {
		why = "it changed since you trusted it"
	}
	names := make([]string, len(keys))
	for i, a := range keys {
		names[i] = fmt.Sprintf("%s (%s)", a.Path, a.Key.Trust)
	}
	return &configfile.Error{File: file, Line: keys[0].Line, Msg: fmt.Sprintf(
		"%s: taken only from a file you trust, and %s; read it, then run 'kubectl remocal config trust %s', or name it with --%s",
		strings.Join(names, ", "), why, file, configfile.Flag)}
}

type trustState int

const (
	untrusted trustState = iota
	changed              // the path is trusted with another content
	trusted
)

// trustStore is the list of trusted configuration files.
type trustStore struct{ path string }

func defaultTrustStore() (trustStore, error) {
	dir, err := userDir()
	if err != nil {
		return trustStore{}, err
	}
	return trustStore{path: filepath.Join(dir, trustStoreName)}, nil
}

// state says whether the file at path, with content data, is trusted.
func (s trustStore) state(path string, data []byte) (trustState, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return untrusted, err
	}
	entries, err := s.read()
	if err != nil {
		return untrusted, err
	}
	sum, ok := entries[abs]
	switch {
	case !ok:
		return untrusted, nil
	case sum != contentHash(data):
		return changed, nil
	}
	return trusted, nil
}

// trust records the file at path with content data, replacing what was trusted there before,
// and returns its absolute path and hash.
func (s trustStore) trust(path string, data []byte) (abs, sum string, err error) {
	if abs, err = filepath.Abs(path); err != nil {
		return "", "", err
	}
	if strings.ContainsAny(abs, "\n\r") {
		return "", "", fmt.Errorf("cannot trust %q: its path has a line break", abs)
	}
	entries, err := s.read()
	if err != nil {
		return "", "", err
	}
	sum = contentHash(data)
	entries[abs] = sum
	var b bytes.Buffer
	for _, p := range slices.Sorted(maps.Keys(entries)) {
		fmt.Fprintf(&b, "%s  %s\n", entries[p], p)
	}
	if err := writeFileAtomic(s.path, b.Bytes()); err != nil {
		return "", "", fmt.Errorf("record the trust in %s: %w", s.path, err)
	}
	return abs, sum, nil
}

// read returns the trusted files, absolute path to hash; none when the store does not exist.
func (s trustStore) read() (map[string]string, error) {
	entries := map[string]string{}
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return entries, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the trusted configuration files: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		sum, path, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != sha256.Size*2 || !filepath.IsAbs(path) {
			return nil, fmt.Errorf("%s:%d: not HASH  PATH; fix or remove the line (kubectl remocal config trust writes it)", s.path, n)
		}
		entries[path] = sum
	}
	return entries, sc.Err()
}

func contentHash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// writeFileAtomic replaces path with data, readable by the user only: a reader sees the old
// content or the new, never a part.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing left to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// trustFile trusts the configuration file at path as it is now, after checking that it is one,
// and says what it trusted.
func trustFile(path string, out io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	cfg, err := configfile.Decode(path, data)
	if err != nil {
		return err
	}
	store, err := defaultTrustStore()
	if err != nil {
		return err
	}
	abs, sum, err := store.trust(path, data)
	if err != nil {
		return err
	}
	var keys []string
	for _, k := range trustedKeys("", configfile.Keys()) {
		if cfg.Sets(k) {
			keys = append(keys, k)
		}
	}
	sets := "none of the keys that need trust"
	if len(keys) > 0 {
		sets = strings.Join(keys, ", ")
	}
	_, err = fmt.Fprintf(out, "trusted %s (sha256 %s), which sets %s; editing it takes the trust back\n", abs, sum, sets)
	return err
}

// trustedKeys are the paths of the keys that a discovered file needs trust to set.
func trustedKeys(prefix string, keys []configfile.Key) []string {
	var paths []string
	for _, k := range keys {
		switch {
		case k.Section != nil:
			paths = append(paths, trustedKeys(prefix+k.Name+".", k.Section)...)
		case k.Trust != "":
			paths = append(paths, prefix+k.Name)
		}
	}
	return paths
}
