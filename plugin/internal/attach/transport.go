package attach

// Transport is how the plugin reaches the sidecar: the value of --transport, and of "transport"
// in the configuration file, which sets that flag.
type Transport string

const (
	// TransportAuto dials the pod IP directly when it answers, else through a port-forward.
	TransportAuto Transport = "auto"
	// TransportDirect dials only the pod IP, over UDP, and fails when it does not answer.
	TransportDirect Transport = "direct"
	// TransportPortForward dials only through the API server's port-forward, and a new
	// sidecar serves no direct path at all.
	TransportPortForward Transport = "port-forward"
)

// Transports are the values a Transport takes, in the order --help lists them.
func Transports() []Transport {
	return []Transport{TransportAuto, TransportDirect, TransportPortForward}
}
