package sidecar

import (
	"context"
	"log/slog"
	"net"
	"sync"

	"github.com/quic-go/quic-go"

	"github.com/remocal/kubectl-remocal/pkg/wire"

	"github.com/remocal/kubectl-remocal/sidecar/capture"
	"github.com/remocal/kubectl-remocal/sidecar/redirect"
)

// incoming holds the pod's ports that clients subscribed: the nftables table that redirects
// them, the listener where redirected connections arrive, and the client of each port. The
// table exists only while some port is subscribed, so a sidecar at rest leaves the pod's
// network as it found it.
//
// Its rooms: the subscriptions (subscriptions.go), the connections the table redirects
// (redirected.go), and the redirect tables (tables.go).
type incoming struct {
	log *slog.Logger
	// holder names this sidecar in its table's rules (its container name): another sidecar of
	// the pod that finds a port taken tells its user whose it is. Empty: the table's name.
	holder string

	mu    sync.Mutex
	table *redirect.Table
	ln    *net.TCPListener
	// stopRenewing ends the renewal of the table's lease, which keeps its redirects in force.
	stopRenewing context.CancelFunc
	// fromClient says the sidecar may connect to the app from a redirected client's address
	// (redirect.DialFrom); otherwise the app sees the pod's own.
	fromClient bool
	// subs holds each subscribed port's subscriptions: one that takes the whole port (a
	// steal or a mirror), or one or more filtered steals, each of another client, which
	// share the port's HTTP requests (the first whose filter matches takes a request).
	subs map[uint16][]subscription
	// changed has, for each subscribed port, a channel closed when its subscriptions change:
	// a filtered connection routes by the subscriptions it started with, and ends then, so
	// that its client's next connection is routed among the current ones.
	changed map[uint16]chan struct{}
	// handedOver holds, by their route secrets, the connections this sidecar handed over to
	// another and that are still served there (handover.go).
	handedOver map[wire.PeerToken]handedOver
	// captures holds the one packet socket of every port mirrored by capture.
	captures *capture.Socket
	// copies bounds what the mirror copies of every port hold in their queues.
	copies *budget
	// lanes carries a stolen connection on one of its client's lanes, when it has one
	// ready; nil, or false, and a QUIC stream carries it.
	lanes func(client *quic.Conn, arrival wire.Incoming) (laneConn, bool)
	wg    sync.WaitGroup
}

// newIncoming's holder is the sidecar's name in its table's rules.
func newIncoming(log *slog.Logger, holder string) *incoming {
	return &incoming{log: log, holder: holder, subs: map[uint16][]subscription{}, changed: map[uint16]chan struct{}{}, captures: capture.NewSocket(log), copies: newBudget("mirror copies", copyBudget)}
}

// close removes everything, when the sidecar stops.
func (in *incoming) close() {
	in.mu.Lock()
	for _, subs := range in.subs {
		if subs[0].capture != nil {
			_ = subs[0].capture.Close()
		}
		for _, s := range subs {
			switch {
			case s.joined != nil:
				s.joined.conn.Close()
			case s.member != nil:
				s.member.end() // its sidecar routes the port from now on
			}
		}
	}
	clear(in.subs)
	for _, ch := range in.changed {
		close(ch)
	}
	clear(in.changed)
	in.stopIfIdle()
	in.mu.Unlock()
	in.wg.Wait()
}
