// Package testnet has the small network servers that tests of several packages stand in for
// remote peers with, and the network namespace a test runs in when it changes the network.
// Servers listen on loopback and stop when the test ends.
package testnet

import (
	"io"
	"net"
	"testing"
)

// TCPEcho serves a TCP echo on loopback and returns its address.
func TCPEcho(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// UDPEcho serves a UDP echo on loopback that answers each datagram with prefix and the
// datagram, and returns its address.
func UDPEcho(t testing.TB, prefix string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(append([]byte(prefix), buf[:n]...), from)
		}
	}()
	return pc.LocalAddr().String()
}
