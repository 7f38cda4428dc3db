package wire

// CloseMaxLifetime is the QUIC application error code a sidecar closes its connections with when
// it ends at its maximum lifetime (the sidecar's --max-lifetime), so that the plugin can tell the
// user why the session ended. Code 0 is every other close.
const CloseMaxLifetime uint64 = 1
