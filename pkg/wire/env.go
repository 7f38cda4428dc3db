package wire

import (
	"fmt"
	"strings"
)

// EnvRequest asks the sidecar for the target container's environment.
type EnvRequest struct{}

// Type implements Message.
func (EnvRequest) Type() Type { return TypeEnvRequest }

func (EnvRequest) check() error { return nil }

func (r EnvRequest) appendPayload(b []byte) []byte { return appendEnvRequest(b, r) }

func appendEnvRequest(b []byte, _ EnvRequest) []byte { return b }

func parseEnvRequest([]byte) (EnvRequest, int, error) { return EnvRequest{}, 0, nil }

// EnvReply carries the target container's environment, in as many replies as it takes: every
// one but the last has More set.
type EnvReply struct {
	// Environ holds KEY=VALUE entries exactly as /proc/PID/environ has them: not split, not
	// deduplicated, not required to be UTF-8, since the local process must see what the remote
	// one sees.
	Environ []string
	More    bool
}

// Type implements Message.
func (EnvReply) Type() Type { return TypeEnvReply }

func (r EnvReply) check() error {
	return checkStrings(r.Environ, maxEnvEntries, maxEnvEntryLen, "environ")
}

func (r EnvReply) appendPayload(b []byte) []byte { return appendEnvReply(b, r) }

func appendEnvReply(b []byte, r EnvReply) []byte {
	return appendBool(appendStrings(b, r.Environ), r.More)
}

func parseEnvReply(b []byte) (EnvReply, int, error) {
	env, n, err := parseStrings(b, maxEnvEntries, maxEnvEntryLen, "environ")
	if err != nil {
		return EnvReply{}, 0, err
	}
	more, m, err := parseBool(b[n:], "env reply more")
	if err != nil {
		return EnvReply{}, 0, err
	}
	return EnvReply{Environ: env, More: more}, n + m, nil
}

// SplitEnviron cuts an environment into replies that each fit a frame, in order. A single
// entry that cannot fit one frame is refused, named by its key.
func SplitEnviron(env []string) ([]EnvReply, error) {
	// Per entry: its bytes and a length of at most 3 bytes (entries are under 64 KiB); per
	// reply: the count and the More flag.
	const overhead = 16
	var replies []EnvReply
	var chunk []string
	size := overhead
	for _, kv := range env {
		entry := len(kv) + 3
		if overhead+entry > MaxFrameSize {
			key, _, _ := strings.Cut(kv, "=")
			return nil, fmt.Errorf("%w: the variable %s is %d bytes, over the %d-byte frame", ErrTooLarge, key, len(kv), MaxFrameSize)
		}
		if size+entry > MaxFrameSize || len(chunk) == maxEnvEntries {
			replies = append(replies, EnvReply{Environ: chunk, More: true})
			chunk, size = nil, overhead
		}
		chunk = append(chunk, kv)
		size += entry
	}
	return append(replies, EnvReply{Environ: chunk}), nil
}
