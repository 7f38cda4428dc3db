package sidecarclient

import (
	"context"
	"fmt"

	"github.com/remocal/kubectl-remocal/pkg/wire"
)

// What the session asks of the target container on the control stream: which one it is, its
// environment, a file read whole.

// NameTarget tells the sidecar which running container is the target, so that in a pod that
// shares one PID namespace among its containers it serves that container's process and not the
// lowest PID it sees (maybe a mesh proxy). containerID is the container's instance as the
// runtime names it, which changes when it restarts. A sidecar that does not know the request
// (an older version), or an empty ID, leaves the sidecar's own choice. A sidecar that finds no
// process of the container returns a *RefusedError.
func (s *Session) NameTarget(ctx context.Context, containerID string) (err error) {
	if containerID == "" || !s.has(wire.FeatureTarget) {
		return nil
	}
	defer s.takeControl(ctx)(&err)
	_, err = roundTrip[wire.TargetReply](s, "name the target container", "cannot find the target container's process", wire.Target{ContainerID: containerID})
	return err
}

// The bounds of the environment a sidecar may send, far above real ones (a namespace with a
// thousand Services has about 7,000 service-link variables, about 500 KiB).
const (
	maxEnviron      = 1 << 16
	maxEnvironBytes = 8 << 20
)

// Environ asks the sidecar for the target container's environment, which comes in as many
// replies as it takes. A sidecar that cannot read it returns a *RefusedError.
func (s *Session) Environ(ctx context.Context) (_ []string, err error) {
	defer s.takeControl(ctx)(&err)
	if err := wire.WriteMessage(s.control, wire.EnvRequest{}); err != nil {
		return nil, fmt.Errorf("request environment: %w", err)
	}
	var env []string
	size := 0
	for {
		msg, err := s.reader.ReadMessage()
		if err != nil {
			return nil, fmt.Errorf("read environment: %w", err)
		}
		switch m := msg.(type) {
		case wire.EnvReply:
			env = append(env, m.Environ...)
			for _, kv := range m.Environ {
				size += len(kv)
			}
			if len(env) > maxEnviron || size > maxEnvironBytes {
				s.outOfStep()
				return nil, fmt.Errorf("the target's environment is over the limit of %d variables or %d MiB", maxEnviron, maxEnvironBytes>>20)
			}
			if !m.More {
				return env, nil
			}
		case wire.Error:
			return nil, &RefusedError{What: "could not read the target's environment", Reason: m}
		default:
			s.outOfStep()
			return nil, fmt.Errorf("unexpected environment reply %T", msg)
		}
	}
}

// ReadFile reads a file of the target container, which comes in as many replies as it takes. A
// failure the sidecar's read got keeps its errno (errors.Is with syscall.ENOENT).
func (s *Session) ReadFile(ctx context.Context, path string) (_ []byte, err error) {
	if err := s.need(wire.FeatureReadFile, "read files"); err != nil {
		return nil, err
	}
	defer s.takeControl(ctx)(&err)
	if err := wire.WriteMessage(s.control, wire.FileRequest{Path: path}); err != nil {
		return nil, fmt.Errorf("request %s: %w", path, err)
	}
	var data []byte
	for {
		msg, err := s.reader.ReadMessage()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		reply, ok := msg.(wire.FileReply)
		if !ok {
			s.outOfStep()
			return nil, fmt.Errorf("read %s: unexpected reply %T", path, msg)
		}
		if err := reply.Err(); err != nil {
			if reply.More { // a failure is the whole answer; a sidecar that says otherwise is lost
				s.outOfStep()
			}
			return nil, fmt.Errorf("read %s in the pod: %w", path, err)
		}
		if len(data)+len(reply.Data) > wire.MaxFileSize {
			s.outOfStep()
			return nil, fmt.Errorf("read %s: the sidecar sent over %d bytes, the most a file may have", path, wire.MaxFileSize)
		}
		data = append(data, reply.Data...)
		if !reply.More {
			return data, nil
		}
	}
}
