package attach

import (
	"net/http"
	"net/url"
	"strings"

	portforwardconst "k8s.io/apimachinery/pkg/util/portforward"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/websocket"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// tunnelDialer upgrades to the pod's portforward subresource over WebSocket, with SPDY inside,
// as client-go's portforward.NewSPDYOverWebsocketDialerForStreaming does, but sends each SPDY
// frame whole (frameConn).
type tunnelDialer struct {
	url       *url.URL
	transport http.RoundTripper
	holder    websocket.ConnectionHolder
}

func newTunnelDialer(url *url.URL, config *rest.Config) (*tunnelDialer, error) {
	transport, holder, err := websocket.RoundTripperFor(config)
	if err != nil {
		return nil, err
	}
	return &tunnelDialer{url: url, transport: transport, holder: holder}, nil
}

func (d *tunnelDialer) Dial(protocols ...string) (httpstream.Connection, string, error) {
	req, err := http.NewRequest(http.MethodGet, d.url.String(), nil)
	if err != nil {
		return nil, "", err
	}
	tunneled := make([]string, len(protocols))
	for i, p := range protocols {
		tunneled[i] = portforwardconst.WebsocketsSPDYTunnelingPrefix + p
	}
	ws, err := websocket.Negotiate(d.transport, d.holder, req, tunneled...)
	if err != nil {
		return nil, "", err
	}
	protocol := strings.TrimPrefix(ws.Subprotocol(), portforwardconst.WebsocketsSPDYTunnelingPrefix)
	conn, err := spdy.NewClientConnectionWithPings(&frameConn{Conn: portforward.NewTunnelingConnection("client", ws)}, portforward.PingPeriod)
	return conn, protocol, err
}
