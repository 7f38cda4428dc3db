package redirect

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The sidecar connects to the pod's app on behalf of a redirected client (a mirrored
// connection, the requests a filter leaves to the app) from that client's own address, so that
// the app sees who really called it, as Envoy's original_src filter does: a transparent socket
// (IP_TRANSPARENT) binds the client's address, and its packets carry sourceMark. The app's
// answers to that address would leave through the pod's default route; a rule of the table
// copies the mark to the connection (conntrack) and back onto the answers, and a routing rule
// sends marked packets to routing table sourceTable, whose one route delivers everything
// locally, to the transparent socket.
const (
	sourceMark  = 0x72656d // "rem"
	sourceTable = 0x72656d
)

// DeliverMarkedLocally adds the routing rule and route that bring packets with the sidecar's
// mark back into the pod (both address families) to the network namespace held by nsFD, or to
// the caller's with nsFD < 0. They are shared by every sidecar of the pod and left in place: they
// act only on marked packets, and only a table's MarkAnswers marks any.
func DeliverMarkedLocally(nsFD int) error {
	h, err := netlinkHandle(nsFD)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find the loopback interface: %w", err)
	}
	for _, family := range []struct {
		id  int
		all string
	}{{unix.AF_INET, "0.0.0.0/0"}, {unix.AF_INET6, "::/0"}} {
		rule := netlink.NewRule()
		rule.Family, rule.Mark, rule.Table = family.id, sourceMark, sourceTable
		if err := h.RuleAdd(rule); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add the routing rule for marked packets: %w", explain(err))
		}
		_, dst, _ := net.ParseCIDR(family.all)
		route := &netlink.Route{
			Dst: dst, Table: sourceTable, Type: unix.RTN_LOCAL, Scope: netlink.SCOPE_HOST,
			LinkIndex: lo.Attrs().Index, Family: family.id,
		}
		if err := h.RouteReplace(route); err != nil {
			if family.id == unix.AF_INET6 && errors.Is(err, unix.EAFNOSUPPORT) {
				continue // no IPv6 in this pod
			}
			return fmt.Errorf("add the local route for marked packets: %w", explain(err))
		}
	}
	return nil
}

func netlinkHandle(nsFD int) (*netlink.Handle, error) {
	if nsFD < 0 {
		return netlink.NewHandle()
	}
	return netlink.NewHandleAt(netns.NsHandle(nsFD))
}

// MarkAnswers adds to the table the output chain that keeps the sidecar's mark on its
// transparent connections: the mark of the sidecar's packets goes to the connection, and the
// connection's mark onto the app's answers, which a route chain then routes again by it.
func (t *Table) MarkAnswers() error {
	mark := binaryutil.NativeEndian.PutUint32(sourceMark)
	return t.apply(func(c *nftables.Conn) error {
		chain := c.AddChain(&nftables.Chain{
			Name:     "output",
			Table:    t.table,
			Type:     nftables.ChainTypeRoute,
			Hooknum:  nftables.ChainHookOutput,
			Priority: nftables.ChainPriorityMangle,
		})
		c.AddRule(&nftables.Rule{Table: t.table, Chain: chain, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: mark},
			&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true},
		}})
		c.AddRule(&nftables.Rule{Table: t.table, Chain: chain, Exprs: []expr.Any{
			&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: mark},
			&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
		}})
		return nil
	})
}

// DialFrom connects to dst from the address of src, a client that is not of this pod, with a
// transparent socket carrying the sidecar's mark. It needs DeliverMarkedLocally and a table's
// MarkAnswers, and CAP_NET_ADMIN. The port is the kernel's choice, but never src's own: that
// one names the redirected connection in conntrack, which would take our packets for its own
// and redirect them to the sidecar again; so the socket is bound, and its port checked, before
// it connects.
func DialFrom(ctx context.Context, src netip.AddrPort, dst netip.AddrPort) (*net.TCPConn, error) {
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port()) // as a dual-stack listener shows it
	d := net.Dialer{
		Control: func(network, _ string, raw syscall.RawConn) error {
			var err error
			if cerr := raw.Control(func(fd uintptr) { err = bindTransparent(int(fd), network, src) }); cerr != nil {
				return cerr
			}
			return err
		},
	}
	for {
		c, err := d.DialContext(ctx, "tcp", dst.String())
		if errors.Is(err, errClientPort) {
			continue // about one in 28,000: take another port
		}
		if err != nil {
			return nil, err
		}
		return c.(*net.TCPConn), nil
	}
}

var errClientPort = errors.New("bound the client's own port")

// bindTransparent makes fd a marked transparent socket bound to src's address on a port of the
// kernel's choice other than src's.
func bindTransparent(fd int, network string, src netip.AddrPort) error {
	level, opt := unix.SOL_IP, unix.IP_TRANSPARENT
	var sa unix.Sockaddr = &unix.SockaddrInet4{Addr: src.Addr().As4()}
	if network == "tcp6" {
		level, opt = unix.SOL_IPV6, unix.IPV6_TRANSPARENT
		sa = &unix.SockaddrInet6{Addr: src.Addr().As16()}
	}
	if err := unix.SetsockoptInt(fd, level, opt, 1); err != nil {
		return fmt.Errorf("transparent socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, sourceMark); err != nil {
		return fmt.Errorf("mark the socket: %w", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fmt.Errorf("bind the client's address %s: %w", src.Addr(), err)
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		return err
	}
	switch b := bound.(type) {
	case *unix.SockaddrInet4:
		if b.Port == int(src.Port()) {
			return errClientPort
		}
	case *unix.SockaddrInet6:
		if b.Port == int(src.Port()) {
			return errClientPort
		}
	}
	return nil
}
