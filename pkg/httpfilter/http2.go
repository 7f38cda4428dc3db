package httpfilter

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"sync"
)

// serveHTTP2 terminates the client's HTTP/2 connection and proxies each request to the
// upstream the routes pick, over one HTTP/2 connection per upstream. Frames cannot be
// relayed verbatim: stream ids, flow control and header compression state belong to one
// connection, and ours is split between two upstreams.
//
// It uses net/http's HTTP/2 (Protocols with UnencryptedHTTP2) rather than
// golang.org/x/net/http2, whose Server and Transport are deprecated in its favour. net/http
// serves listeners, not single connections, hence the one-connection listener.
func serveHTTP2(ctx context.Context, client *peer, routes []Route, dialApp dialFunc, conns *connSet) error {
	locals := make([]*httputil.ReverseProxy, len(routes))
	for i, r := range routes {
		proxy, transport := http2Proxy(localName(i), r.Dial, conns)
		defer transport.CloseIdleConnections()
		locals[i] = proxy
	}
	app, appTransport := http2Proxy("app", dialApp, conns)
	defer appTransport.CloseIdleConnections()

	closed := make(chan struct{})
	var closeOnce sync.Once
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen := http2Request(r)
			for i, route := range routes {
				if route.Filter.matches(seen) {
					locals[i].ServeHTTP(w, r)
					return
				}
			}
			app.ServeHTTP(w, r)
		}),
		Protocols:      http2Only(),
		MaxHeaderBytes: maxHeadBytes,
		ErrorLog:       log.New(io.Discard, "", 0),
		BaseContext:    func(net.Listener) context.Context { return ctx },
		ConnState: func(_ net.Conn, state http.ConnState) {
			if state == http.StateClosed {
				closeOnce.Do(func() { close(closed) })
			}
		},
	}
	served := make(chan error, 1)
	go func() {
		served <- srv.Serve(newOneConnListener(&bufferedConn{Conn: client.conn, peer: client}))
	}()
	select {
	case <-closed:
	case <-ctx.Done():
	}
	srv.Close()
	<-served
	return nil
}

// http2Proxy returns a reverse proxy to one upstream and its transport.
func http2Proxy(name string, dial dialFunc, conns *connSet) (*httputil.ReverseProxy, *http.Transport) {
	transport := &http.Transport{
		Protocols: http2Only(),
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			conn, err := dial(ctx)
			if err != nil {
				return nil, fmt.Errorf("dial %s: %w", name, err)
			}
			if !conns.add(conn) {
				return nil, fmt.Errorf("dial %s: connection closed", name)
			}
			return conn, nil
		},
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			// The URL host only keys the transport's connection pool, so that all requests
			// share one connection; :authority is taken from Out.Host, the client's.
			pr.Out.URL.Host = name
			// ReverseProxy removes these before Rewrite; a transparent proxy keeps them.
			for _, key := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v, ok := pr.In.Header[key]; ok {
					pr.Out.Header[key] = v
				}
			}
		},
		Transport:     transport,
		FlushInterval: -1, // gRPC and other streams need every message passed on at once
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, fmt.Sprintf("remocal: %s: %v", name, err), http.StatusBadGateway)
		},
	}
	return proxy, transport
}

// http2Request is what a Filter sees of r.
func http2Request(r *http.Request) *request {
	return &request{
		method:   r.Method,
		header:   textproto.MIMEHeader(r.Header),
		host:     r.Host,
		path:     r.URL.EscapedPath(),
		rawQuery: r.URL.RawQuery,
	}
}

func http2Only() *http.Protocols {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return p
}

// bufferedConn is the client connection read through its buffer, which holds the preface we
// peeked and maybe more.
type bufferedConn struct {
	net.Conn
	peer *peer
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.peer.r.Read(b) }

// oneConnListener accepts one connection, then blocks until closed.
type oneConnListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
	addr   net.Addr
}

func newOneConnListener(conn net.Conn) *oneConnListener {
	l := &oneConnListener{conns: make(chan net.Conn, 1), closed: make(chan struct{}), addr: conn.LocalAddr()}
	l.conns <- conn
	return l
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	select {
	case conn := <-l.conns:
		return conn, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.addr }
