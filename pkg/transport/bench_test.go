package transport

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// benchSize is what one benchmark iteration sends: large enough that connection setup and slow
// start do not dominate.
const benchSize = 32 << 20

// benchChunk is written repeatedly; its content does not matter to a transport.
func benchChunk() []byte {
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

// benchQUIC sends benchSize bytes per iteration through one QUIC stream to a countSink and waits
// for the sink to confirm it read them all.
func benchQUIC(b *testing.B, conn *quic.Conn) {
	chunk := benchChunk()
	ctx := testContext(b, 10*time.Minute)
	b.SetBytes(benchSize)
	for b.Loop() {
		str, err := conn.OpenStreamSync(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for sent := 0; sent < benchSize; sent += len(chunk) {
			if _, err := str.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		str.Close()
		if _, err := io.ReadFull(str, make([]byte, 1)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkThroughputUDP(b *testing.B) {
	conn := newUDPPath(testContext(b, time.Minute), b, countSink)
	benchQUIC(b, conn)
}

func BenchmarkThroughputStream(b *testing.B) {
	sp := newStreamPath(testContext(b, time.Minute), b, countSink)
	benchQUIC(b, sp.conn)
}

// BenchmarkThroughputTCP is the baseline: the same bytes over plain loopback TCP.
func BenchmarkThroughputTCP(b *testing.B) {
	ln := listenTCP(b)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for {
					if _, err := io.CopyN(io.Discard, c, benchSize); err != nil {
						return
					}
					c.Write([]byte{1})
				}
			}()
		}
	}()
	var d net.Dialer
	c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	chunk := benchChunk()
	b.SetBytes(benchSize)
	for b.Loop() {
		for sent := 0; sent < benchSize; sent += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			b.Fatal(err)
		}
	}
}
