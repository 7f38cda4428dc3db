package testnet

import (
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
)

// FreePort returns a loopback port free for both TCP and UDP, for a server that binds it
// itself later (the sidecar binds one port for both). A port the kernel handed out here and we
// closed could be handed out again in between to any socket of another test (packages run in
// parallel): the port is drawn below the kernel's ephemeral range instead, which only an
// explicit bind takes.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		port := 10000 + rand.IntN(20000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		if pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}
