package plugin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2"

	"github.com/remocal/kubectl-remocal/layer"
	"github.com/remocal/kubectl-remocal/pkg/wire"
	"github.com/remocal/kubectl-remocal/plugin/internal/attach"
	"github.com/remocal/kubectl-remocal/plugin/internal/progress"
)

// Which of the pod's files the program sees instead of the local ones.
const (
	fsModeLocal = "local"
	fsModeRead  = "read"
	fsModeWrite = "write"
)

// serviceAccountDir is where Kubernetes mounts a pod's service account token, CA and namespace.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// fsOptions choose the remote files.
type fsOptions struct {
	FSMode        string
	FSRemote      []string
	FSLocal       []string
	FSNotFound    []string
	FSMaxFileSize string

	maxFileSize int64 // parsed by validateFS
	// fsAsked tells that the user asked for remote files with a flag: where this machine
	// cannot show them, that is an error rather than a warning.
	fsAsked bool
}

func (o *fsOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.FSMode, "fs-mode", fsModeRead, "the pod's files the command sees at their pod paths (the container's volume mounts, the service account, /etc/hostname, /etc/hosts, /etc/resolv.conf): read (read-only), write (changes go to the pod when a file is closed), local (none: every file is this machine's)")
	f.StringArrayVar(&o.FSRemote, "fs-remote", nil, "also show the pod's files at this path or glob (repeatable)")
	f.StringArrayVar(&o.FSLocal, "fs-local", nil, "keep this machine's files at this path or glob, where a volume mount of the pod would cover them (repeatable)")
	f.StringArrayVar(&o.FSNotFound, "fs-not-found", nil, "make this machine's paths matching this glob look absent to the command, e.g. ~/.kube so that SDKs use the pod's service account (repeatable)")
	f.StringVar(&o.FSMaxFileSize, "fs-max-file-size", "16Mi", "opening a remote file larger than this fails with EFBIG (at most 16Mi)")
}

// validateFS checks the flags without I/O.
func (o *fsOptions) validateFS() error {
	switch o.FSMode {
	case fsModeLocal, fsModeRead, fsModeWrite:
	default:
		return fmt.Errorf("--fs-mode must be read, write or local, not %q", o.FSMode)
	}
	for _, list := range [][]string{o.FSRemote, o.FSLocal, o.FSNotFound} {
		for _, glob := range list {
			if _, err := path.Match(expandHome(glob), ""); err != nil {
				return fmt.Errorf("path glob %q: %w", glob, err)
			}
			if !path.IsAbs(expandHome(glob)) {
				return fmt.Errorf("path glob %q is not absolute", glob)
			}
		}
	}
	q, err := resource.ParseQuantity(o.FSMaxFileSize)
	if err != nil {
		return fmt.Errorf("--fs-max-file-size %q: %w", o.FSMaxFileSize, err)
	}
	if o.maxFileSize = q.Value(); o.maxFileSize <= 0 || o.maxFileSize > wire.MaxFileSize {
		return fmt.Errorf("--fs-max-file-size must be between 1 and 16Mi, not %s", o.FSMaxFileSize)
	}
	return nil
}

// expandHome turns a leading ~/ into the user's home directory: the shell does not when the
// flag is written --fs-not-found=~/.kube.
func expandHome(glob string) string {
	if rest, ok := strings.CutPrefix(glob, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return glob
}

// remoteCandidates are the pod paths the program should see, before asking the pod what each
// is: the container's volume mounts, the service account, the files Kubernetes writes for the
// pod, and --fs-remote paths (globs are expanded in the pod later).
func (o *fsOptions) remoteCandidates(pod *corev1.Pod, container string) []string {
	if o.FSMode == fsModeLocal {
		return nil
	}
	var paths []string
	if c, ok := attach.ContainerSpec(pod, container); ok {
		for _, m := range c.VolumeMounts {
			paths = append(paths, path.Clean(m.MountPath))
		}
	}
	paths = append(paths, serviceAccountDir, "/etc/hostname", "/etc/hosts", "/etc/resolv.conf")
	for _, glob := range o.FSRemote {
		paths = append(paths, path.Clean(expandHome(glob)))
	}
	var kept []string
	for _, p := range paths {
		if !slices.Contains(kept, p) && !o.keptLocal(p) {
			kept = append(kept, p)
		}
	}
	return kept
}

// keptLocal tells whether --fs-local covers p: it or one of its ancestors matches.
func (o *fsOptions) keptLocal(p string) bool {
	for _, glob := range o.FSLocal {
		for q := p; ; q = path.Dir(q) {
			if ok, _ := path.Match(expandHome(glob), q); ok {
				return true
			}
			if q == "/" {
				break
			}
		}
	}
	return false
}

// absent tells whether --fs-not-found makes p look absent.
func (o *fsOptions) absent(p string) bool {
	for _, glob := range o.FSNotFound {
		if ok, _ := path.Match(expandHome(glob), p); ok {
			return true
		}
	}
	return false
}

// hiddenLocalPaths are this machine's paths that --fs-not-found matches now.
func (o *fsOptions) hiddenLocalPaths() ([]string, error) {
	var hidden []string
	for _, glob := range o.FSNotFound {
		matches, err := filepath.Glob(expandHome(glob))
		if err != nil {
			return nil, fmt.Errorf("--fs-not-found %q: %w", glob, err)
		}
		hidden = append(hidden, matches...)
	}
	return hidden, nil
}

// remoteTree is what the pod has at the candidate paths: directories to serve as filesystems,
// and single files (a subPath mount, /etc/hostname) to serve as they are now.
type remoteTree struct {
	dirs  []string
	files map[string][]byte
	// tooLarge are single files over --fs-max-file-size, left local.
	tooLarge []string
}

// lookRemote asks the pod what each candidate is. Paths the pod does not have are skipped;
// globs are expanded there.
func (o *fsOptions) lookRemote(ctx context.Context, sess *attach.Live, candidates []string) (remoteTree, error) {
	tree := remoteTree{files: map[string][]byte{}}
	var paths []string
	for _, c := range candidates {
		if !strings.ContainsAny(c, `*?[\`) {
			paths = append(paths, c)
			continue
		}
		matches, err := remoteGlob(ctx, sess, c)
		if err != nil {
			return remoteTree{}, fmt.Errorf("--fs-remote %q: %w", c, err)
		}
		paths = append(paths, matches...)
	}
	for _, p := range paths {
		st, err := sess.Stat(ctx, p)
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR) {
			klog.V(1).InfoS("not in the pod, stays local", "path", p)
			continue
		}
		if err != nil {
			return remoteTree{}, fmt.Errorf("look at the pod's %s: %w", p, err)
		}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			tree.dirs = append(tree.dirs, p)
		case syscall.S_IFREG:
			data, _, err := sess.ReadFileLimit(ctx, p, o.maxFileSize)
			if errors.Is(err, syscall.EFBIG) {
				tree.tooLarge = append(tree.tooLarge, p)
				continue
			}
			if err != nil {
				return remoteTree{}, fmt.Errorf("read the pod's %s: %w", p, err)
			}
			tree.files[p] = data
		default:
			klog.V(1).InfoS("neither a file nor a directory in the pod, stays local", "path", p)
		}
	}
	return tree, nil
}

// leaveSystemPaths drops the pod's files that would be shown over this machine's system files
// (/usr, /etc/ld.so.preload...) or over the program's own (keep), and returns their paths,
// sorted. A pod's spec is not the developer's to trust: its mount paths choose where its files
// land here.
func (t *remoteTree) leaveSystemPaths(keep []string) []string {
	shown := append(slices.Collect(maps.Keys(t.files)), t.dirs...)
	refused := layer.Shadowing(shown, keep...)
	for _, p := range refused {
		delete(t.files, p)
		t.dirs = slices.DeleteFunc(t.dirs, func(d string) bool { return d == p })
	}
	slices.Sort(refused)
	return refused
}

// programFiles are the local files the program runs from, which no pod file may be shown
// over: its executable, remocal's own (the layer's helper), and, for go run and go test, where
// go builds the program.
func programFiles(command []string) []string {
	var files []string
	if len(command) > 0 {
		if p, err := exec.LookPath(command[0]); err == nil {
			if abs, err := filepath.Abs(p); err == nil {
				files = append(files, abs)
			}
		}
		if filepath.Base(command[0]) == "go" {
			tmp := os.Getenv("GOTMPDIR")
			if tmp == "" {
				tmp = os.TempDir()
			}
			files = append(files, filepath.Join(tmp, "go-build"))
		}
	}
	if self, err := os.Executable(); err == nil {
		files = append(files, self)
	}
	return files
}

// remoteGlob expands glob (absolute) against the pod's filesystem, one directory listing per
// element that has a pattern.
func remoteGlob(ctx context.Context, sess *attach.Live, glob string) ([]string, error) {
	matches := []string{"/"}
	for _, elem := range strings.Split(strings.Trim(glob, "/"), "/") {
		var next []string
		for _, dir := range matches {
			if !strings.ContainsAny(elem, `*?[\`) {
				next = append(next, path.Join(dir, elem))
				continue
			}
			entries, err := sess.ReadDir(ctx, dir)
			if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR) {
				continue
			}
			if err != nil {
				return nil, err
			}
			for _, e := range entries {
				if ok, _ := path.Match(elem, e.Name); ok {
					next = append(next, path.Join(dir, e.Name))
				}
			}
		}
		matches = next
	}
	return matches, nil
}

// addRemoteFiles puts the pod's files into the layer's configuration: directories as
// filesystems served from the pod (by serve: from the pod the session is on when the program
// asks), single files as they are now in sess's, and the hidden local paths.
// The DNS files already in cfg.Files (made to work from here) win over the pod's own.
func (o *ExecOptions) addRemoteFiles(ctx context.Context, sess *attach.Live, p *progress.Printer, cfg *layer.Config) error {
	hidden, err := o.hiddenLocalPaths()
	if err != nil {
		return err
	}
	cfg.Hidden = hidden
	var candidates []string
	for _, c := range o.remoteCandidates(sess.Target().Pod, sess.Target().Container) {
		_, served := cfg.Files[c]
		// Without the pod's DNS path, its resolver configuration would name servers that
		// cannot be reached from here.
		dns := c == "/etc/resolv.conf" || c == "/etc/hosts"
		if !served && !(dns && o.NoOutgoing) {
			candidates = append(candidates, c)
		}
	}
	tree, err := o.lookRemote(ctx, sess, candidates)
	if err != nil {
		return err
	}
	for _, path := range tree.tooLarge {
		p.Warn("the pod's %s is larger than --fs-max-file-size (%d bytes): the local one stays", path, o.maxFileSize)
	}
	if refused := tree.leaveSystemPaths(programFiles(o.command)); len(refused) > 0 {
		p.Warn("the pod's %s stay local: shown there, the pod's files would choose code that runs on this machine (--fs-local silences this)", strings.Join(refused, ", "))
	}
	if len(tree.files) > 0 && cfg.Files == nil {
		cfg.Files = map[string][]byte{}
	}
	for path, data := range tree.files {
		cfg.Files[path] = data
	}
	for _, dir := range tree.dirs {
		cfg.Mounts = append(cfg.Mounts, layer.Mount{Path: dir, ReadOnly: o.FSMode != fsModeWrite, Serve: o.serveRemoteDir(sess, dir)})
	}
	return nil
}

// reportRemoteFiles says which of the pod's directories the program sees.
func (o *ExecOptions) reportRemoteFiles(p *progress.Printer, mounts []layer.Mount) {
	if len(mounts) == 0 {
		return
	}
	dirs := make([]string, len(mounts))
	for i, m := range mounts {
		dirs[i] = m.Path
	}
	access := "read-only"
	if o.FSMode == fsModeWrite {
		access = "writable"
	}
	p.Step("the pod's files at %s (%s)", strings.Join(dirs, ", "), access)
}
