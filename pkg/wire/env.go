package wire

// EnvRequest asks the sidecar for the target container's environment.
type EnvRequest struct{}

// Type implements Message.
func (EnvRequest) Type() Type { return TypeEnvRequest }

func (EnvRequest) check() error { return nil }

func (r EnvRequest) appendPayload(b []byte) []byte { return appendEnvRequest(b, r) }

func appendEnvRequest(b []byte, _ EnvRequest) []byte { return b }

func parseEnvRequest([]byte) (EnvRequest, int, error) { return EnvRequest{}, 0, nil }

// EnvReply carries the target container's environment.
type EnvReply struct {
	// Environ holds KEY=VALUE entries exactly as /proc/PID/environ has them: not split, not
	// deduplicated, not required to be UTF-8, since the local process must see what the remote
	// one sees. The whole reply must fit in one frame.
	Environ []string
}

// Type implements Message.
func (EnvReply) Type() Type { return TypeEnvReply }

func (r EnvReply) check() error {
	return checkStrings(r.Environ, maxEnvEntries, maxEnvEntryLen, "environ")
}

func (r EnvReply) appendPayload(b []byte) []byte { return appendEnvReply(b, r) }

func appendEnvReply(b []byte, r EnvReply) []byte { return appendStrings(b, r.Environ) }

func parseEnvReply(b []byte) (EnvReply, int, error) {
	env, n, err := parseStrings(b, maxEnvEntries, maxEnvEntryLen, "environ")
	if err != nil {
		return EnvReply{}, 0, err
	}
	return EnvReply{Environ: env}, n, nil
}
