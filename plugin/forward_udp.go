package plugin

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/remocal/kubectl-remocal/pkg/wire"
	"github.com/remocal/kubectl-remocal/plugin/internal/attach"
)

// udpForwardIdle ends a forwarded UDP flow after this long without a datagram either way, as
// the layer's UDP flows end.
const udpForwardIdle = 2 * time.Minute

// maxUDPForwardFlows bounds the local clients one -L .../udp serves at once: datagrams from
// new addresses past it are dropped, so a sender spraying from many ports cannot make the
// plugin hold a stream and a queue for each.
const maxUDPForwardFlows = 1024

// udpForwardQueue is how many datagrams of one flow wait while its stream is being opened or
// is slow; past it they are dropped, as a congested network would drop them.
const udpForwardQueue = 64

// serveForwardUDP relays the datagrams that reach pc to remote, sent from the pod: each local
// client address is a flow with a stream of its own (framed datagrams), and the answers come
// back to that address from pc. It returns when ctx ends or pc is closed.
func serveForwardUDP(ctx context.Context, sess *attach.Session, pc *net.UDPConn, remote string, errOut io.Writer) {
	go func() {
		<-ctx.Done()
		pc.Close()
	}()
	var mu sync.Mutex
	flows := map[netip.AddrPort]chan []byte{}
	buf := make([]byte, 64<<10)
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		mu.Lock()
		queue, ok := flows[from]
		if !ok && len(flows) >= maxUDPForwardFlows {
			mu.Unlock()
			continue
		}
		if !ok {
			queue = make(chan []byte, udpForwardQueue)
			flows[from] = queue
			go func() {
				forwardUDPFlow(ctx, sess, pc, from, remote, queue, errOut)
				mu.Lock()
				delete(flows, from)
				mu.Unlock()
			}()
		}
		mu.Unlock()
		select {
		case queue <- append([]byte(nil), buf[:n]...):
		default: // the flow is behind: drop, as UDP may
		}
	}
}

// forwardUDPFlow carries one local client's datagrams to remote and the answers back, until
// the flow has been idle for udpForwardIdle, its stream fails, or ctx ends.
func forwardUDPFlow(ctx context.Context, sess *attach.Session, pc *net.UDPConn, client netip.AddrPort, remote string, queue <-chan []byte, errOut io.Writer) {
	stream, err := sess.Dial(ctx, "udp", remote, 10*time.Second)
	if err != nil {
		fmt.Fprintf(errOut, "remocal: forward %s/udp to %s: %v\n", client, remote, err)
		return
	}
	defer stream.Abandon()
	active := make(chan struct{}, 1)
	touch := func() {
		select {
		case active <- struct{}{}:
		default:
		}
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 64<<10)
		for {
			n, err := wire.ReadDatagram(stream, buf)
			if err != nil {
				return
			}
			touch()
			if _, err := pc.WriteToUDPAddrPort(buf[:n], client); err != nil {
				return
			}
		}
	}()
	idle := time.NewTimer(udpForwardIdle)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-readDone: // the pod's side ended the flow
			return
		case <-idle.C:
			return
		case <-active:
			idle.Reset(udpForwardIdle)
		case d := <-queue:
			if err := wire.WriteDatagram(stream, d); err != nil {
				return
			}
			idle.Reset(udpForwardIdle)
		}
	}
}
