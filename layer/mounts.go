//go:build linux

package layer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A mount plan is what the helper does in its own mount namespace before it execs the program:
// the supervisor writes it, the helper applies it. It travels in the environment (planEnv)
// because the helper may be started by `go run -exec`, out of the supervisor's hands.
type mountPlan struct {
	// Files are bind mounts of single files: served content over a local path.
	Files []fileBind `json:"files,omitempty"`
	// Remote are the mount points of FUSE filesystems that the supervisor serves.
	Remote []remoteMount `json:"remote,omitempty"`
	// Hidden are local paths that must look absent.
	Hidden []string `json:"hidden,omitempty"`
	// Stage is a directory of the user's where the helper may build shadow directories.
	Stage string `json:"stage"`
	// UID and GID are the user's: the helper mounts as root of its user namespace, then
	// becomes the user again to run the program.
	UID int `json:"uid"`
	GID int `json:"gid"`
}

type fileBind struct {
	Target string `json:"target"`
	Source string `json:"source"`
}

type remoteMount struct {
	Path     string `json:"path"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

func (p mountPlan) empty() bool { return len(p.Files) == 0 && !p.needsNamespaces() }

// needsNamespaces tells a plan that only mounts can carry out: served files alone can also be
// served from trapped opens.
func (p mountPlan) needsNamespaces() bool { return len(p.Remote)+len(p.Hidden) > 0 }

func (p mountPlan) encode() (string, error) {
	b, err := json.Marshal(p)
	return string(b), err
}

func decodePlan(s string) (mountPlan, error) {
	var p mountPlan
	err := json.Unmarshal([]byte(s), &p)
	return p, err
}

// preparePlan writes the served files and encodes the mount plan for the helpers.
func (s *Supervisor) preparePlan() error {
	plan := mountPlan{Stage: filepath.Join(s.dir, "stage"), Hidden: s.cfg.Hidden, UID: os.Getuid(), GID: os.Getgid()}
	if len(s.cfg.Files) > 0 {
		binds, err := writeFiles(filepath.Join(s.dir, "files"), s.cfg.Files)
		if err != nil {
			return fmt.Errorf("layer files: %w", err)
		}
		plan.Files = binds
	}
	s.mounts = outermost(s.cfg.Mounts)
	for _, m := range s.mounts {
		plan.Remote = append(plan.Remote, remoteMount{Path: m.Path, ReadOnly: m.ReadOnly})
	}
	for _, p := range append(slices.Clone(plan.Hidden), mountPaths(s.mounts)...) {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("layer mounts: %q is not an absolute path", p)
		}
	}
	if plan.empty() {
		return nil
	}
	if self, err := os.Executable(); err == nil {
		s.userns = userNamespaces(self) == nil
	}
	switch {
	case !s.userns && plan.needsNamespaces():
		return ErrNoUserNamespaces
	case !s.userns:
		s.log.Info("user namespaces are unavailable: served files cost a trap on every open")
	}
	if len(plan.Remote) > 0 {
		if err := checkFUSE(); err != nil {
			return err
		}
	}
	encoded, err := plan.encode()
	s.plan = encoded
	return err
}

// outermost drops the mounts inside another: the outer filesystem shows them already, and
// their mount point could not be made without looking into it before it is served.
func outermost(mounts []Mount) []Mount {
	var kept []Mount
	for _, m := range mounts {
		m.Path = filepath.Clean(m.Path)
		inside := slices.ContainsFunc(mounts, func(o Mount) bool {
			o.Path = filepath.Clean(o.Path)
			return o.Path != m.Path && within(m.Path, o.Path)
		})
		if !inside && !slices.ContainsFunc(kept, func(k Mount) bool { return k.Path == m.Path }) {
			kept = append(kept, m)
		}
	}
	return kept
}

func mountPaths(mounts []Mount) []string {
	paths := make([]string, len(mounts))
	for i, m := range mounts {
		paths[i] = m.Path
	}
	return paths
}

// writeFiles stores the served files under dir and returns their bind mounts.
func writeFiles(dir string, files map[string][]byte) ([]fileBind, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var binds []fileBind
	for target, content := range files {
		src := filepath.Join(dir, strconv.Itoa(len(binds)))
		if err := os.WriteFile(src, content, 0o644); err != nil {
			return nil, err
		}
		binds = append(binds, fileBind{Target: target, Source: src})
	}
	return binds, nil
}

// applyPlan carries out the plan in the helper's mount namespace and returns the FUSE devices,
// in the order of plan.Remote, for the supervisor to serve.
//
// A mount needs a mount point of the right kind. Where the local machine has none (a pod's
// /etc/app or /var/run/secrets/...), or where a path must look absent, the nearest existing
// ancestor directory is shadowed: a tmpfs holding every entry of the original (each a bind
// mount of it, so it stays the same file) but the absent ones, plus the new mount points,
// made read-only and moved over the original. Writes into the original directory itself are
// what change: they were the local owner's anyway, and a shadow refuses them (EROFS).
func applyPlan(p mountPlan) (fuseDevs []int, err error) {
	// Private first, so nothing we mount can propagate back to the machine's namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return nil, fmt.Errorf("make mounts private: %w", err)
	}
	shadows := shadowSet{}
	for _, h := range p.Hidden {
		if err := shadows.hide(h); err != nil {
			return nil, err
		}
	}
	remoteAt := make([]string, len(p.Remote))
	for i, r := range p.Remote {
		if remoteAt[i], err = shadows.ensure(r.Path, true); err != nil {
			return nil, err
		}
	}
	fileAt := make([]string, len(p.Files))
	for i, f := range p.Files {
		if fileAt[i], err = shadows.ensure(f.Target, false); err != nil {
			return nil, err
		}
	}
	if err := shadows.apply(p.Stage); err != nil {
		return nil, err
	}
	for i, f := range p.Files {
		if err := unix.Mount(f.Source, fileAt[i], "", unix.MS_BIND, ""); err != nil {
			return nil, fmt.Errorf("bind %s: %w", f.Target, err)
		}
	}
	for i, r := range p.Remote {
		dev, err := mountFUSE(remoteAt[i], r.ReadOnly)
		if err != nil {
			for _, d := range fuseDevs {
				unix.Close(d)
			}
			return nil, fmt.Errorf("mount the pod's %s: %w", r.Path, err)
		}
		fuseDevs = append(fuseDevs, dev)
	}
	return fuseDevs, nil
}

// mountFUSE mounts a FUSE filesystem at dir and returns its device, which nobody serves yet:
// nothing may look into dir until the supervisor does.
func mountFUSE(dir string, readOnly bool) (int, error) {
	dev, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /dev/fuse: %w", err)
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
	if readOnly {
		flags |= unix.MS_RDONLY
	}
	// The owner is this namespace's root, which is the user: the program, back as the user
	// in a nested namespace, is the mount's owner, and only it may use the mount.
	opts := fmt.Sprintf("fd=%d,rootmode=40000,user_id=%d,group_id=%d", dev, os.Getuid(), os.Getgid())
	if err := unix.Mount("remocal", dir, "fuse.remocal", flags, opts); err != nil {
		unix.Close(dev)
		return -1, err
	}
	return dev, nil
}

// shadowSet collects the directories to shadow, by their real path (symlinks resolved).
type shadowSet map[string]*shadow

type shadow struct {
	// omit are the names of the original that the shadow leaves out.
	omit map[string]bool
	// create are paths, relative to the shadowed directory, made in it: directories, or an
	// empty file for the last element when dir is false.
	create []newPath
}

type newPath struct {
	rel string
	dir bool
}

func (s shadowSet) get(dir string) *shadow {
	if s[dir] == nil {
		s[dir] = &shadow{omit: map[string]bool{}}
	}
	return s[dir]
}

// hide makes path look absent; a path that is already absent needs nothing.
func (s shadowSet) hide(path string) error {
	parent, err := filepath.EvalSymlinks(filepath.Dir(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("hide %s: %w", path, err)
	}
	if _, err := os.Lstat(filepath.Join(parent, filepath.Base(path))); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	s.get(parent).omit[filepath.Base(path)] = true
	return nil
}

// ensure arranges for path to exist as a directory (dir) or a file, and returns where to
// mount over it: path with the symlinks of its existing part resolved.
func (s shadowSet) ensure(path string, dir bool) (string, error) {
	existing, rest := path, []string(nil)
	for {
		fi, err := os.Stat(existing)
		if err == nil && (fi.IsDir() || len(rest) == 0) {
			if len(rest) == 0 && fi.IsDir() == dir {
				return filepath.EvalSymlinks(path) // already the right kind
			}
			break
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTDIR) {
			return "", fmt.Errorf("mount point %s: %w", path, err)
		}
		if existing == "/" {
			return "", fmt.Errorf("mount point %s: no ancestor directory exists", path)
		}
		rest = append([]string{filepath.Base(existing)}, rest...)
		existing = filepath.Dir(existing)
	}
	real, err := filepath.EvalSymlinks(existing)
	if err != nil {
		return "", fmt.Errorf("mount point %s: %w", path, err)
	}
	if len(rest) == 0 {
		// It exists with the other kind: replace it in its parent's shadow.
		real, rest = filepath.Dir(real), []string{filepath.Base(real)}
	}
	// rest[0] is absent from real, or not a directory (a file, a dangling symlink) where one
	// must be: the shadow has its own.
	sh := s.get(real)
	sh.omit[rest[0]] = true
	sh.create = append(sh.create, newPath{rel: filepath.Join(rest...), dir: dir})
	return filepath.Join(real, filepath.Join(rest...)), nil
}

// apply builds and mounts the shadows, shallowest first: a deeper one is then built from
// what the program will see there.
func (s shadowSet) apply(stage string) error {
	dirs := make([]string, 0, len(s))
	for d := range s {
		dirs = append(dirs, d)
	}
	slices.SortFunc(dirs, func(a, b string) int { return strings.Count(a, "/") - strings.Count(b, "/") })
	for i, dir := range dirs {
		if err := s[dir].mount(dir, filepath.Join(stage, strconv.Itoa(i))); err != nil {
			return fmt.Errorf("shadow %s: %w", dir, err)
		}
	}
	return nil
}

// mount builds the shadow of dir in a tmpfs at stage and moves it over dir.
func (sh *shadow) mount(dir, stage string) error {
	orig, err := os.Stat(dir)
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(stage, 0o700); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", stage, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("tmpfs: %w", err)
	}
	for _, e := range entries {
		if sh.omit[e.Name()] {
			continue
		}
		if err := copyEntry(filepath.Join(dir, e.Name()), filepath.Join(stage, e.Name()), e.Type()); err != nil {
			return err
		}
	}
	for _, p := range sh.create {
		target := filepath.Join(stage, p.rel)
		if p.dir {
			err = os.MkdirAll(target, 0o755)
		} else if err = os.MkdirAll(filepath.Dir(target), 0o755); err == nil {
			err = os.WriteFile(target, nil, 0o644)
		}
		if err != nil {
			return err
		}
	}
	if err := os.Chmod(stage, orig.Mode().Perm()); err != nil {
		return err
	}
	if err := unix.Mount("", stage, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("make read-only: %w", err)
	}
	if dir != "/" {
		return unix.Mount(stage, dir, "", unix.MS_MOVE, "")
	}
	// A mount over / is not seen from the old root, which every process still has: change
	// root into it from inside it (what switch_root does), then go back to where we were.
	cwd, err := os.Getwd()
	if err != nil {
		return err
	}
	if err := unix.Chdir(stage); err != nil {
		return err
	}
	if err := unix.Mount(stage, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move over /: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return err
	}
	return unix.Chdir(cwd)
}

// copyEntry puts at dst the entry src of the original directory: the same symlink, or a
// recursive bind mount of the file or directory, so that what lies below is untouched.
func copyEntry(src, dst string, mode fs.FileMode) error {
	switch {
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	case mode.IsDir():
		if err := os.Mkdir(dst, 0o755); err != nil {
			return err
		}
	default:
		if err := os.WriteFile(dst, nil, 0o644); err != nil {
			return err
		}
	}
	// Recursive: a mount of our namespace's parent is locked to its submounts, and binding
	// it alone would be refused.
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	return nil
}
