package httpfilter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// http1Proxy relays the HTTP/1 requests of one client connection, one at a time and in
// order: a pipelined request waits in the client's read buffer until the response to the
// previous one is complete.
type http1Proxy struct {
	client *peer
	routes []routedUpstream
	app    *upstream
	// bodies counts the goroutines copying request bodies; they end when the connections
	// they use are closed.
	bodies sync.WaitGroup
}

// routedUpstream is where the requests a filter matches go.
type routedUpstream struct {
	filter   Filter
	handOver func(client net.Conn, buffered []byte) bool // see Route.HandOver
	upstream *upstream
}

// serve relays requests until the client connection must end.
func (p *http1Proxy) serve(ctx context.Context) error {
	for {
		req, err := readRequestHead(p.client.r)
		switch {
		case errors.Is(err, io.EOF):
			return nil // the client closed between requests
		case errors.Is(err, errHeadTooLarge):
			return p.refuse(http.StatusRequestHeaderFieldsTooLarge, err)
		case errors.Is(err, errMalformed):
			return p.refuse(http.StatusBadRequest, err)
		case err != nil:
			return fmt.Errorf("read request: %w", err)
		}
		route := p.route(req)
		if route != nil && route.handOver != nil && route.handOver(p.client.conn, p.unrelayed(req)) {
			return ErrHandedOver
		}
		up := p.app
		if route != nil {
			up = route.upstream
		}
		more, err := p.exchange(ctx, req, up)
		if err != nil || !more {
			return err
		}
	}
}

// refuse answers a request we cannot relay, then ends the connection: after a bad head we
// do not know where the next request would start.
func (p *http1Proxy) refuse(status int, cause error) error {
	if err := reply(p.client.w, status, cause.Error(), true); err != nil {
		return errors.Join(fmt.Errorf("refuse request: %w", cause), err)
	}
	lingerClose(p.client)
	return fmt.Errorf("refuse request: %w", cause)
}

// route is the first route whose filter matches req, or nil: the app's.
func (p *http1Proxy) route(req *requestHead) *routedUpstream {
	seen := req.filtered()
	for i := range p.routes {
		if p.routes[i].filter.matches(seen) {
			return &p.routes[i]
		}
	}
	return nil
}

// unrelayed is what was read from the client and not relayed, req first: what whoever takes
// the connection over must read before the connection itself.
func (p *http1Proxy) unrelayed(req *requestHead) []byte {
	ahead, _ := p.client.r.Peek(p.client.r.Buffered())
	return append(slices.Clip(req.raw), ahead...)
}

// exchange relays req to up and its response back. It reports whether the client connection
// can carry another request.
func (p *http1Proxy) exchange(ctx context.Context, req *requestHead, up *upstream) (bool, error) {
	body, err := requestFraming(req)
	if err != nil {
		return false, p.refuse(http.StatusBadRequest, err)
	}
	// Without a body that would have to be skipped, the client connection survives an
	// upstream failure before the response.
	survivable := body.kind == bodyNone && req.persistent()
	if err := up.ready(ctx); err != nil {
		return p.badGateway(err, survivable, nil)
	}

	up.w.Write(req.raw) // an error is kept by the writer and returned by its Flush
	bodyDone, clientIdle := p.sendBody(up, body, !mayTunnel(req))
	resp, sawContinue, err := p.finalResponse(up)
	if err != nil {
		up.drop()
		select {
		case bodyErr := <-bodyDone:
			if errors.Is(bodyErr, errMalformed) {
				return false, p.refuse(http.StatusBadRequest, bodyErr)
			}
		default:
		}
		return p.badGateway(err, survivable, clientIdle)
	}
	if isTunnel(req, resp) {
		p.client.w.Write(resp.raw)
		if err := <-bodyDone; err != nil {
			return false, fmt.Errorf("relay request body to %s: %w", up.name, err)
		}
		return false, tunnel(p.client, up.peer)
	}
	respBody, err := responseFraming(req, resp)
	if err != nil {
		up.drop()
		return p.badGateway(fmt.Errorf("response from %s: %w", up.name, err), survivable, clientIdle)
	}
	p.client.w.Write(resp.raw)
	if err := (relay{src: up.r, dst: p.client.w}).copyBody(respBody); err != nil {
		up.drop()
		return false, fmt.Errorf("relay response from %s: %w", up.name, err)
	}

	// A client that expected 100 Continue and got a final status instead may never send the
	// body (RFC 9110 section 10.1.1); unless it already has, the connection cannot go on.
	var bodyErr error
	if expectsContinue(req) && !sawContinue {
		select {
		case bodyErr = <-bodyDone:
		default:
			bodyErr = errors.New("request body not sent after a final response to Expect: 100-continue")
		}
	} else {
		bodyErr = <-bodyDone
	}
	more := bodyErr == nil && req.persistent() && resp.persistent() && respBody.kind != bodyUntilClose
	if !more {
		up.drop()
	} else {
		up.keepIdle()
		<-clientIdle
	}
	if bodyErr != nil {
		return false, fmt.Errorf("relay request body to %s: %w", up.name, bodyErr)
	}
	return more, nil
}

// sendBody copies the request body to the upstream in the background, reporting the result
// on bodyDone. The body is copied while the response is read: the upstream may answer before
// it has read the whole body, or, for "Expect: 100-continue", before the client sends it.
//
// If watch is set, it then watches the client until its next request starts: a client that
// closes while its request is in progress has given up on the response, and closing the
// upstream connection keeps a slow or stuck upstream from holding the connection forever.
// clientIdle is closed once nothing reads from the client any more. Requests that may switch
// protocols are not watched: after a 101 the tunnel reads the client at once.
func (p *http1Proxy) sendBody(up *upstream, body framing, watch bool) (bodyDone <-chan error, clientIdle <-chan struct{}) {
	done, idle := make(chan error, 1), make(chan struct{})
	toUpstream, upConn := relay{src: p.client.r, dst: up.w}, up.conn
	p.bodies.Go(func() {
		defer close(idle)
		err := toUpstream.copyBody(body)
		if err != nil {
			// The upstream waits for the rest of a request that will not come; only
			// closing its connection ends the wait for its response.
			upConn.Close()
		}
		done <- err
		if err == nil && watch {
			if _, err := toUpstream.src.Peek(1); err != nil {
				upConn.Close()
			}
		}
	})
	return done, idle
}

// finalResponse passes interim (1xx) responses on to the client and returns the final
// response, or a 101 after which the connection no longer speaks HTTP.
func (p *http1Proxy) finalResponse(up *upstream) (resp *responseHead, sawContinue bool, err error) {
	if err := up.awaitResponse(); err != nil {
		return nil, false, err
	}
	for {
		resp, err := readResponseHead(up.r)
		if err != nil {
			return nil, false, fmt.Errorf("read response from %s: %w", up.name, err)
		}
		if resp.status >= 200 || resp.status == http.StatusSwitchingProtocols {
			return resp, sawContinue, nil
		}
		sawContinue = sawContinue || resp.status == http.StatusContinue
		p.client.w.Write(resp.raw)
		if err := p.client.w.Flush(); err != nil {
			return nil, false, fmt.Errorf("relay interim response: %w", err)
		}
	}
}

// badGateway answers 502 for a request whose upstream failed before its response. The
// client connection goes on if survivable, once clientIdle (if not nil) says the client is
// ours to read again.
func (p *http1Proxy) badGateway(cause error, survivable bool, clientIdle <-chan struct{}) (bool, error) {
	if err := reply(p.client.w, http.StatusBadGateway, cause.Error(), !survivable); err != nil {
		return false, errors.Join(cause, err)
	}
	if !survivable {
		if clientIdle != nil {
			// The body copy still reads the client: bound it as lingerClose would, and
			// wait for it, since only one of us may read.
			p.client.conn.SetReadDeadline(time.Now().Add(lingerTimeout))
			<-clientIdle
		}
		lingerClose(p.client)
		return false, cause
	}
	if clientIdle != nil {
		<-clientIdle
	}
	return true, nil
}

// mayTunnel reports whether the response to req may turn the connection into a tunnel.
func mayTunnel(req *requestHead) bool {
	return req.method == http.MethodConnect || len(req.header["Upgrade"]) > 0
}

// expectsContinue reports whether the client waits for 100 Continue before sending the body.
func expectsContinue(req *requestHead) bool {
	return httpguts.HeaderValuesContainsToken(req.header["Expect"], "100-continue")
}
