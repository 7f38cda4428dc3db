package layer

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// Outgoing is the outgoing-traffic filter: everything leaves through the pod except loopback
// and what Local names.
type Outgoing struct {
	// Off keeps every destination local (--no-outgoing).
	Off bool
	// LocalNets and LocalAddrs are destinations reached from this machine (--local).
	LocalNets  []netip.Prefix
	LocalAddrs []netip.AddrPort
}

// Remote reports whether a connection to dst goes through the pod.
func (o Outgoing) Remote(dst netip.AddrPort) bool {
	addr := dst.Addr().Unmap()
	if o.Off || addr.IsLoopback() || addr.IsUnspecified() || addr.IsMulticast() {
		return false
	}
	for _, p := range o.LocalNets {
		if p.Contains(addr) {
			return false
		}
	}
	for _, a := range o.LocalAddrs {
		if a.Addr().Unmap() == addr && a.Port() == dst.Port() {
			return false
		}
	}
	return true
}

// AddLocal parses one --local value: a CIDR, an IP, or host:port (a host name is resolved
// here, with this machine's resolver, since the destination is local).
func (o *Outgoing) AddLocal(ctx context.Context, spec string) error {
	if p, err := netip.ParsePrefix(spec); err == nil {
		o.LocalNets = append(o.LocalNets, p.Masked())
		return nil
	}
	if a, err := netip.ParseAddr(spec); err == nil {
		o.LocalNets = append(o.LocalNets, netip.PrefixFrom(a, a.BitLen()))
		return nil
	}
	host, portText, err := net.SplitHostPort(spec)
	if err != nil {
		return fmt.Errorf("--local %q: want a CIDR, an IP or HOST:PORT", spec)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return fmt.Errorf("--local %q: bad port %q", spec, portText)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("--local %q: %w", spec, err)
	}
	for _, a := range addrs {
		o.LocalAddrs = append(o.LocalAddrs, netip.AddrPortFrom(a.Unmap(), uint16(port)))
	}
	return nil
}
