package attach

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// attemptDelay is the head start each pod address has before the direct path also tries the
// next one (RFC 8305's connection attempt delay): on a dual-stack cluster the primary family
// answers first where both are reachable, and a laptop that reaches only the other family (an
// IPv6-only VPN, say) waits a quarter second for it, not the whole probe timeout.
const attemptDelay = 250 * time.Millisecond

// podAddrs are the pod's addresses the direct path tries, in the order of status.podIPs, whose
// first is of the cluster's primary family; family, when set, keeps that family's only.
func podAddrs(pod *corev1.Pod, family corev1.IPFamily) []netip.Addr {
	ips := pod.Status.PodIPs
	if len(ips) == 0 && pod.Status.PodIP != "" {
		ips = []corev1.PodIP{{IP: pod.Status.PodIP}} // a status written before podIPs existed
	}
	var addrs []netip.Addr
	for _, ip := range ips {
		a, err := netip.ParseAddr(ip.IP)
		if err != nil {
			continue
		}
		a = a.Unmap()
		if family == corev1.IPv4Protocol && !a.Is4() || family == corev1.IPv6Protocol && !a.Is6() {
			continue
		}
		addrs = append(addrs, a)
	}
	return addrs
}

// firstAnswer dials addrs in turn, each once the one before it has failed or had attemptDelay
// to answer, and returns the first success and its address. It returns once every attempt it
// started has ended, after closing the successes it does not return.
func firstAnswer[C interface{ Close() error }](ctx context.Context, addrs []netip.Addr, dial func(context.Context, netip.Addr) (C, error)) (C, netip.Addr, error) {
	type outcome struct {
		addr netip.Addr
		conn C
		err  error
	}
	if len(addrs) == 0 {
		var zero C
		return zero, netip.Addr{}, errors.New("no address to dial")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	outcomes := make(chan outcome, len(addrs))
	next, running := 0, 0
	start := func() {
		addr := addrs[next]
		next++
		running++
		go func() {
			conn, err := dial(ctx, addr)
			outcomes <- outcome{addr, conn, err}
		}()
	}
	delay := time.NewTimer(attemptDelay)
	defer delay.Stop()

	var won *outcome
	var errs []error
	for (won == nil && next < len(addrs)) || running > 0 {
		if running == 0 {
			start() // the first, or the next after every started one failed
			delay.Reset(attemptDelay)
			continue
		}
		var tick <-chan time.Time
		if won == nil && next < len(addrs) {
			tick = delay.C
		}
		select {
		case o := <-outcomes:
			running--
			switch {
			case o.err != nil:
				errs = append(errs, fmt.Errorf("%s: %w", o.addr, o.err))
			case won == nil:
				won = &o
				cancel() // the others have lost: end their attempts
			default:
				_ = o.conn.Close()
			}
		case <-tick:
			start()
			delay.Reset(attemptDelay)
		}
	}
	if won == nil {
		var zero C
		return zero, netip.Addr{}, errors.Join(errs...)
	}
	return won.conn, won.addr, nil
}
