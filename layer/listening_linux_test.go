package layer

import (
	"net"
	"testing"
)

func TestListening(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			ln, err := net.Listen(network, "localhost:0")
			if err != nil {
				t.Skipf("no %s here: %v", network, err)
			}
			port := uint16(ln.Addr().(*net.TCPAddr).Port)
			// A connected socket on another port must not count: only listeners do.
			c, err := net.Dial(network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if ok, err := Listening(port); err != nil || !ok {
				t.Errorf("Listening(%d) = %v, %v while listening; want true", port, ok, err)
			}
			if ok, err := Listening(uint16(c.LocalAddr().(*net.TCPAddr).Port)); err != nil || ok {
				t.Errorf("Listening(a connected socket's port) = %v, %v; want false", ok, err)
			}
			ln.Close()
			if ok, err := Listening(port); err != nil || ok {
				t.Errorf("Listening(%d) = %v, %v after close; want false", port, ok, err)
			}
		})
	}
}
