package transport

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
)

// sessionTokenLen is the length of a sessionToken: 128 random bits, which nobody guesses.
const sessionTokenLen = 16

// sessionIDLen is the length of a SessionID: 128 bits of a hash, so that no two tokens share one,
// by chance or by design.
const sessionIDLen = 16

// streamNetwork is the Network of the virtual addresses of the stream path.
const streamNetwork = "remocal-stream"

// sessionToken is what a stream presents to continue a session: a secret that only the two ends of
// the session hold. Anyone who can connect to the server's port (every process in the pod's
// network namespace) could otherwise take a session's place by naming it; so the token is never
// logged nor shown in an address, and the session goes by its SessionID, a hash of the token.
type sessionToken [sessionTokenLen]byte

func newSessionToken() (sessionToken, error) {
	var t sessionToken
	if _, err := rand.Read(t[:]); err != nil {
		return t, fmt.Errorf("generate session token: %w", err)
	}
	return t, nil
}

// id is the public name of the session the token continues.
func (t sessionToken) id() SessionID {
	sum := sha256.Sum256(append([]byte("remocal stream session\x00"), t[:]...))
	return SessionID(sum[:sessionIDLen])
}

// String keeps the token out of any log that formats it by mistake.
func (t sessionToken) String() string { return "<session token>" }

// LogValue keeps the token out of slog's JSON, which would not call String.
func (t sessionToken) LogValue() slog.Value { return slog.StringValue(t.String()) }

// SessionID names one client of a [StreamPacketServer] across all the byte streams it dials, in
// logs and in the session's address. It is a hash of the session's secret token, which a stream
// must present to continue the session: knowing the ID is not enough.
type SessionID [sessionIDLen]byte

func (id SessionID) String() string { return hex.EncodeToString(id[:]) }

// streamAddr is the virtual peer address of a session. It depends on the session ID alone, so it
// stays the same across the session's streams. quic-go compares addresses that are not
// *net.UDPAddr by their String, so an equal String is what keeps a connection from seeing a new
// path (and starting path validation) when a stream is replaced.
type streamAddr struct {
	id   SessionID
	role string // "client" or "server": which end of the session this address names
}

func (a streamAddr) Network() string { return streamNetwork }

func (a streamAddr) String() string { return a.role + "-" + a.id.String() }
