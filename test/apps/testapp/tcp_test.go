package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

func TestServeTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := testLogger(t)
	stop := startServer(t, func(ctx context.Context) error { return serveTCP(ctx, ln, log) })

	t.Run("round trip", func(t *testing.T) {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		// Larger than a socket buffer, so echo and send must overlap.
		want := bytes.Repeat([]byte("remocal "), 256<<10)
		sent := make(chan error, 1)
		go func() {
			_, err := conn.Write(want)
			if err == nil {
				err = conn.(*net.TCPConn).CloseWrite()
			}
			sent <- err
		}()
		got, err := io.ReadAll(conn)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-sent; err != nil {
			t.Fatalf("send: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("echoed %d bytes, want the %d sent", len(got), len(want))
		}
	})

	t.Run("idle connection does not block shutdown", func(t *testing.T) {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// One echo proves the server owns the connection before stopping.
		if _, err := conn.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(conn, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		stop()
		if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Read(make([]byte, 1)); err == nil {
			t.Error("connection still open after shutdown")
		}
	})
}
