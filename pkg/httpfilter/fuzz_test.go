package httpfilter

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// FuzzServe feeds arbitrary client bytes to Serve, with upstreams that answer every request
// they can parse, and checks that Serve neither panics nor hangs once the client is gone.
func FuzzServe(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nX-Dev: alice\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc",
		"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET /upgrade HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\nraw",
		"CONNECT h:1 HTTP/1.1\r\n\r\n",
		http2Preface + "\x00\x00\x00\x04\x00\x00\x00\x00\x00",
		"\r\n\r\nGET * HTTP/1.1\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		client, server := net.Pipe()
		done := make(chan error, 1)
		go func() { done <- Serve(t.Context(), server, devFilter(), answering, answering) }()
		go io.Copy(io.Discard, client)
		client.SetWriteDeadline(time.Now().Add(time.Second))
		client.Write(input)
		client.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Serve still running 5s after the client closed")
		}
	})
}

// answering dials an in-memory upstream that answers each request it can parse with a
// short response, and closes on anything else.
func answering(context.Context) (net.Conn, error) {
	client, server := net.Pipe()
	go func() {
		defer server.Close()
		r := bufio.NewReader(server)
		for {
			req, err := http.ReadRequest(r)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			if _, err := io.WriteString(server, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	}()
	return client, nil
}
