//go:build !linux

package incoming

import (
	"errors"
	"net/netip"
)

// bindLoopback is not needed off Linux, where there is no layer to tell.
func bindLoopback(int, netip.Addr) (netip.AddrPort, error) {
	return netip.AddrPort{}, errors.ErrUnsupported
}
