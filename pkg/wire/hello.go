package wire

import "encoding/binary"

// Hello is the first message on the control stream, from the client to the sidecar.
type Hello struct {
	Version  uint16
	Features []string // what the client can use, e.g. FeatureEnv, FeatureDialTCP
	Client   string   // plugin version, for logs
}

// Type implements Message.
func (Hello) Type() Type { return TypeHello }

func (h Hello) check() error {
	if err := checkStrings(h.Features, maxFeatures, maxFeatureLen, "hello features"); err != nil {
		return err
	}
	return checkString(h.Client, maxVersionLen, "hello client")
}

func (h Hello) appendPayload(b []byte) []byte { return appendHello(b, h) }

func appendHello(b []byte, h Hello) []byte {
	b = binary.BigEndian.AppendUint16(b, h.Version)
	b = appendStrings(b, h.Features)
	return appendString(b, h.Client)
}

func parseHello(b []byte) (Hello, int, error) {
	var h Hello
	var n int
	var err error
	if h.Version, n, err = parseUint16(b, "hello version"); err != nil {
		return Hello{}, 0, err
	}
	features, m, err := parseStrings(b[n:], maxFeatures, maxFeatureLen, "hello features")
	if err != nil {
		return Hello{}, 0, err
	}
	h.Features, n = features, n+m
	client, m, err := parseString(b[n:], maxVersionLen, "hello client")
	if err != nil {
		return Hello{}, 0, err
	}
	h.Client, n = client, n+m
	return h, n, nil
}

// HelloReply answers a Hello: the sidecar's side of the session.
type HelloReply struct {
	Version   uint16
	Features  []string // the negotiated set: Negotiate(hello.Features, sidecar's)
	Sidecar   string   // sidecar version, for logs
	TargetPID int32    // the target container's main process as the sidecar sees it
}

// Type implements Message.
func (HelloReply) Type() Type { return TypeHelloReply }

func (h HelloReply) check() error {
	if err := checkStrings(h.Features, maxFeatures, maxFeatureLen, "hello reply features"); err != nil {
		return err
	}
	return checkString(h.Sidecar, maxVersionLen, "hello reply sidecar")
}

func (h HelloReply) appendPayload(b []byte) []byte { return appendHelloReply(b, h) }

func appendHelloReply(b []byte, h HelloReply) []byte {
	b = binary.BigEndian.AppendUint16(b, h.Version)
	b = appendStrings(b, h.Features)
	b = appendString(b, h.Sidecar)
	return binary.BigEndian.AppendUint32(b, uint32(h.TargetPID))
}

func parseHelloReply(b []byte) (HelloReply, int, error) {
	var h HelloReply
	var n int
	var err error
	if h.Version, n, err = parseUint16(b, "hello reply version"); err != nil {
		return HelloReply{}, 0, err
	}
	features, m, err := parseStrings(b[n:], maxFeatures, maxFeatureLen, "hello reply features")
	if err != nil {
		return HelloReply{}, 0, err
	}
	h.Features, n = features, n+m
	sidecar, m, err := parseString(b[n:], maxVersionLen, "hello reply sidecar")
	if err != nil {
		return HelloReply{}, 0, err
	}
	h.Sidecar, n = sidecar, n+m
	pid, m, err := parseUint32(b[n:], "hello reply target pid")
	if err != nil {
		return HelloReply{}, 0, err
	}
	h.TargetPID, n = int32(pid), n+m
	return h, n, nil
}
