package transport

import (
	"crypto/tls"
	"fmt"
)

// ALPN names the protocol spoken on the QUIC connection. A plugin and a sidecar that disagree on it
// fail the handshake instead of misreading each other's messages.
const ALPN = "remocal/1"

// pinError is a constant error type, so that ErrPinMismatch can be a constant nobody can reassign.
type pinError string

func (e pinError) Error() string { return string(e) }

// ErrPinMismatch is wrapped by the handshake error when the peer's key is not the pinned one.
// Test with errors.Is; the client sees it when the server's key is wrong. A client refused by the
// server sees only the TLS alert the server sent (bad certificate).
const ErrPinMismatch = pinError("peer key does not match the pinned key")

// ServerTLS is the sidecar's TLS configuration: it presents id and accepts exactly one client, the
// one whose key has the fingerprint clientPin.
//
// No chain is verified (RequireAnyClientCert): the client's certificate is self-signed and only
// its key matters. TLS 1.3's CertificateVerify proves the client holds the private key of the
// certificate it sent, so comparing that certificate's key with the pin is the whole check.
// Session tickets are off so that every connection presents and proves a key afresh.
func ServerTLS(id Identity, clientPin string) *tls.Config {
	return &tls.Config{
		Certificates:           []tls.Certificate{id.Certificate()},
		ClientAuth:             tls.RequireAnyClientCert,
		VerifyConnection:       verifyPin("client", clientPin),
		NextProtos:             []string{ALPN},
		MinVersion:             tls.VersionTLS13,
		SessionTicketsDisabled: true,
	}
}

// ClientTLS is the plugin's TLS configuration: it presents id and accepts exactly one server, the
// one whose key has the fingerprint serverPin.
//
// InsecureSkipVerify only turns off chain and name verification, which cannot work here: the
// sidecar's certificate is self-signed and made at its start, and its address is a pod IP or a
// port-forward. The pin replaces that verification, and is stricter than it: VerifyConnection still
// runs, and TLS 1.3's CertificateVerify proves the server holds the pinned key.
func ClientTLS(id Identity, serverPin string) *tls.Config {
	return &tls.Config{
		Certificates:       []tls.Certificate{id.Certificate()},
		InsecureSkipVerify: true,
		VerifyConnection:   verifyPin("server", serverPin),
		NextProtos:         []string{ALPN},
		MinVersion:         tls.VersionTLS13,
	}
}

// verifyPin is used as VerifyConnection rather than VerifyPeerCertificate because crypto/tls calls
// it on every handshake, resumed ones included, so no future change of session settings can skip it.
func verifyPin(peer, pin string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("%s presented no certificate: %w", peer, ErrPinMismatch)
		}
		if got := fingerprint(cs.PeerCertificates[0]); got != pin {
			return fmt.Errorf("%s key is %s, pinned %s: %w", peer, got, pin, ErrPinMismatch)
		}
		return nil
	}
}

// ForLanes derives the TLS configuration of lanes over TCP (the direct path's lanes) from a
// side's QUIC configuration (ServerTLS or ClientTLS): the same keys and pins, another ALPN, and
// session resumption, so that a plugin opening many lanes does not repeat the full handshake
// for each. The server's tickets are keyed by its process and the client's cache is this
// configuration's, so resumption stays within one session; the pin is checked on resumed
// handshakes too (see verifyPin).
func ForLanes(c *tls.Config) *tls.Config {
	c = c.Clone()
	c.NextProtos = []string{LaneALPN}
	c.SessionTicketsDisabled = false
	c.ClientSessionCache = tls.NewLRUClientSessionCache(64)
	return c
}
