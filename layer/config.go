package layer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
)

// HelperArg is the first argument with which the plugin's executable runs as the helper; the
// plugin's main hands over to HelperMain when it sees it, before anything else.
const HelperArg = "__remocal-layer"

// Conn is one connection carried from the pod. For "udp" it keeps datagram boundaries like a
// connected UDP socket: each Write sends one datagram, each Read returns one.
type Conn interface {
	io.ReadWriteCloser
	// CloseWrite ends our direction; reads go on until the pod side ends.
	CloseWrite() error
}

// DialFunc connects to address ("host:port") from the pod over network "tcp" or "udp". A
// failure that the pod's kernel reported wraps its syscall.Errno, so that the local program
// gets the same error.
type DialFunc func(ctx context.Context, network, address string) (Conn, error)

// ListenEvent tells that the program listens on a TCP port.
type ListenEvent struct {
	PID  int
	Addr netip.AddrPort
}

// Config is what a Supervisor serves.
type Config struct {
	// Dial carries connections to the pod. Nil keeps all outgoing traffic local.
	Dial DialFunc
	// Outgoing chooses which destinations go through the pod.
	Outgoing Outgoing
	// Files maps absolute paths to the content an open for reading returns instead of the local
	// file: the pod's resolv.conf and hosts.
	Files map[string][]byte
	// Mounts are directories of another filesystem that the program sees over the local ones
	// (the pod's volumes). They need user namespaces and access to /dev/fuse.
	Mounts []Mount
	// Hidden are local paths that look absent to the program.
	Hidden []string
	// OnListen, if set, is called (from a supervisor goroutine) after each successful listen.
	OnListen func(ListenEvent)
	// Log gets the supervisor's debug and error records; nil discards them.
	Log *slog.Logger
}

// Why Config.Mounts cannot be mounted; New's error wraps one of these.
var (
	ErrNoUserNamespaces = errors.New("user namespaces are unavailable on this machine")
	ErrNoFUSE           = errors.New("FUSE is unavailable to you")
)

// Mount is a FUSE filesystem at Path in the program's view. Each program started under the
// layer has a mount namespace of its own, so a filesystem is mounted once per program: Serve
// gets that mount's FUSE device and serves it until the mount goes (when the program and its
// children have exited), then returns. Its context ends with the supervisor (Close), which may
// come first.
type Mount struct {
	Path     string
	ReadOnly bool
	Serve    func(ctx context.Context, dev *os.File)
}
