// Package httpfilter routes the HTTP requests of one stolen connection one by one: those a
// Filter selects go to the developer's local process, the others to the pod's own app.
//
// HTTP/1.x is relayed verbatim: each request and response is framed (Content-Length,
// chunked, close-delimited, 1xx interim responses, Upgrade and CONNECT tunnels) but its bytes
// are forwarded unchanged, so the upstreams see exactly what the client sent. HTTP/2 with
// prior knowledge (h2c, as gRPC without TLS speaks it) cannot be relayed byte for byte since
// one connection multiplexes streams for both upstreams; it is terminated by net/http and
// each stream is proxied over one HTTP/2 connection per upstream.
//
// An HTTP/1.1 request asking to upgrade to h2c ("Upgrade: h2c") is relayed like any other
// Upgrade: the upstream the filter picks for that request gets the whole connection.
package httpfilter
