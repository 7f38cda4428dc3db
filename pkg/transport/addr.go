package transport

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// sessionIDLen is the length of a SessionID: random, so sessions of different plugins never collide.
const sessionIDLen = 16

// streamNetwork is the Network of the virtual addresses of the stream path.
const streamNetwork = "remocal-stream"

// SessionID names one client of a [StreamPacketServer] across all the byte streams it dials.
type SessionID [sessionIDLen]byte

func newSessionID() (SessionID, error) {
	var id SessionID
	if _, err := rand.Read(id[:]); err != nil {
		return id, fmt.Errorf("generate session id: %w", err)
	}
	return id, nil
}

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
