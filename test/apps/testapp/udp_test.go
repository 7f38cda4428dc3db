package main

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"
)

func TestServeUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := testLogger(t)
	startServer(t, func(ctx context.Context) error { return serveUDP(ctx, pc, log) })

	// Two clients check that each reply goes back to its own sender.
	for i := range 2 {
		t.Run(fmt.Sprintf("client %d", i), func(t *testing.T) {
			conn, err := net.Dial("udp", pc.LocalAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			for _, size := range []int{1, 1400, 60000} {
				want := make([]byte, size)
				for j := range want {
					want[j] = byte(i + j)
				}
				if _, err := conn.Write(want); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, maxDatagram)
				n, err := conn.Read(got)
				if err != nil {
					t.Fatal(err)
				}
				if string(got[:n]) != string(want) {
					t.Errorf("size %d: echoed %d different bytes", size, n)
				}
			}
		})
	}
}
