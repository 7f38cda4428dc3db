package wire

import "encoding/binary"

// maxContainerIDLen bounds a container ID: runtimes use 64 hex digits.
const maxContainerIDLen = 128

// Target names the target container's running instance by its runtime ID, the hex of
// containerStatuses[].containerID after "containerd://" (control stream, FeatureTarget). In a pod
// that shares one PID namespace among its containers, the lowest PID the sidecar sees may be
// another container's process (a mesh proxy): the ID picks the target's own. The answer is a
// TargetReply, or an Error when no process of that container runs.
type Target struct {
	ContainerID string
}

// Type implements Message.
func (Target) Type() Type { return TypeTarget }

func (t Target) check() error {
	return checkString(t.ContainerID, maxContainerIDLen, "target container id")
}

func (t Target) appendPayload(b []byte) []byte { return appendString(b, t.ContainerID) }

func parseTarget(b []byte) (Target, int, error) {
	id, n, err := parseString(b, maxContainerIDLen, "target container id")
	return Target{ContainerID: id}, n, err
}

// TargetReply answers a Target: the container's main process as the sidecar sees it, which
// serves the session's environment and files from then on.
type TargetReply struct {
	PID int32
}

// Type implements Message.
func (TargetReply) Type() Type { return TypeTargetReply }

func (TargetReply) check() error { return nil }

func (r TargetReply) appendPayload(b []byte) []byte {
	return binary.BigEndian.AppendUint32(b, uint32(r.PID))
}

func parseTargetReply(b []byte) (TargetReply, int, error) {
	pid, n, err := parseUint32(b, "target reply pid")
	return TargetReply{PID: int32(pid)}, n, err
}
