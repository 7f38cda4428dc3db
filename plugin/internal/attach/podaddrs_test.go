package attach

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestPodAddrs(t *testing.T) {
	dual := corev1.PodStatus{PodIP: "198.18.64.2", PodIPs: []corev1.PodIP{{IP: "198.18.64.2"}, {IP: "2001:2:0:100::2"}}}
	v6first := corev1.PodStatus{PodIP: "2001:2:0:100::2", PodIPs: []corev1.PodIP{{IP: "2001:2:0:100::2"}, {IP: "198.18.64.2"}}}
	for _, tc := range []struct {
		name   string
		status corev1.PodStatus
		family corev1.IPFamily
		want   []string
	}{
		{"dual-stack, primary first", dual, "", []string{"198.18.64.2", "2001:2:0:100::2"}},
		{"IPv6 primary", v6first, "", []string{"2001:2:0:100::2", "198.18.64.2"}},
		{"IPv6 only", dual, corev1.IPv6Protocol, []string{"2001:2:0:100::2"}},
		{"IPv4 only", v6first, corev1.IPv4Protocol, []string{"198.18.64.2"}},
		{"only podIP set", corev1.PodStatus{PodIP: "198.18.64.2"}, "", []string{"198.18.64.2"}},
		{"a family the pod lacks", corev1.PodStatus{PodIP: "198.18.64.2"}, corev1.IPv6Protocol, nil},
		{"no IP yet", corev1.PodStatus{}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, a := range podAddrs(&corev1.Pod{Status: tc.status}, tc.family) {
				got = append(got, a.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("podAddrs = %v, want %v", got, tc.want)
			}
		})
	}
}

// fakeConn records its Close.
type fakeConn struct {
	addr   netip.Addr
	closed chan struct{}
}

func (c *fakeConn) Close() error { close(c.closed); return nil }

var (
	v4 = netip.MustParseAddr("198.18.64.2")
	v6 = netip.MustParseAddr("2001:2:0:100::2")
)

// dialer answers for each address after its delay, or fails at once when its delay is
// negative; a cancelled attempt fails with the context's error, unless deaf. It keeps every
// conn it made.
type dialer struct {
	delay map[netip.Addr]time.Duration
	deaf  bool // attempts complete even when cancelled, as one that was answering may
	mu    sync.Mutex
	made  []*fakeConn
}

func (d *dialer) dial(ctx context.Context, a netip.Addr) (*fakeConn, error) {
	wait := d.delay[a]
	if wait < 0 {
		return nil, errors.New("unreachable")
	}
	if d.deaf {
		time.Sleep(wait)
	} else {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &fakeConn{addr: a, closed: make(chan struct{})}
	d.mu.Lock()
	d.made = append(d.made, c)
	d.mu.Unlock()
	return c, nil
}

func TestFirstAnswer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay map[netip.Addr]time.Duration
		want  netip.Addr
		// made is how many attempts succeeded: all but the winner are closed.
		made int
	}{
		{"the primary answers within its head start", map[netip.Addr]time.Duration{v4: 10 * time.Millisecond, v6: 0}, v4, 1},
		{"the primary fails: the next is tried at once", map[netip.Addr]time.Duration{v4: -1, v6: 0}, v6, 1},
		{"the primary is silent: the next answers after the head start", map[netip.Addr]time.Duration{v4: time.Hour, v6: 0}, v6, 1},
		{"both answer, the second sooner", map[netip.Addr]time.Duration{v4: attemptDelay + 100*time.Millisecond, v6: 0}, v6, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &dialer{delay: tc.delay}
			begin := time.Now()
			conn, addr, err := firstAnswer(t.Context(), []netip.Addr{v4, v6}, d.dial)
			if err != nil {
				t.Fatal(err)
			}
			if addr != tc.want || conn.addr != tc.want {
				t.Fatalf("answered by %s (conn of %s), want %s", addr, conn.addr, tc.want)
			}
			if tc.delay[v4] == -1 && time.Since(begin) >= attemptDelay {
				t.Errorf("took %s: a failed primary must not hold the next back", time.Since(begin))
			}
			if len(d.made) != tc.made {
				t.Fatalf("%d attempts succeeded, want %d", len(d.made), tc.made)
			}
			for _, c := range d.made {
				select {
				case <-c.closed:
					if c == conn {
						t.Error("the winner was closed")
					}
				default:
					if c != conn {
						t.Errorf("the loser %s was left open", c.addr)
					}
				}
			}
		})
	}
	t.Run("a loser that answered too is closed", func(t *testing.T) {
		// Both answer within a moment of each other: the winner cancels the other, which
		// may still succeed; firstAnswer returns only after closing it.
		d := &dialer{delay: map[netip.Addr]time.Duration{v4: attemptDelay + 50*time.Millisecond, v6: 0}, deaf: true}
		conn, addr, err := firstAnswer(t.Context(), []netip.Addr{v4, v6}, d.dial)
		if err != nil || addr != v6 {
			t.Fatalf("answered by %s, %v; want %s", addr, err, v6)
		}
		if len(d.made) != 2 {
			t.Fatalf("%d attempts succeeded, want both", len(d.made))
		}
		for _, c := range d.made {
			select {
			case <-c.closed:
			default:
				if c != conn {
					t.Errorf("the loser %s was left open", c.addr)
				}
			}
		}
	})
	t.Run("none answers", func(t *testing.T) {
		d := &dialer{delay: map[netip.Addr]time.Duration{v4: -1, v6: -1}}
		_, _, err := firstAnswer(t.Context(), []netip.Addr{v4, v6}, d.dial)
		if err == nil || !containsAll(err.Error(), v4.String(), v6.String()) {
			t.Fatalf("err = %v, want each address's failure", err)
		}
	})
	t.Run("the context ends", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		d := &dialer{delay: map[netip.Addr]time.Duration{v4: time.Hour, v6: time.Hour}}
		_, _, err := firstAnswer(ctx, []netip.Addr{v4, v6}, d.dial)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the deadline", err)
		}
	})
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
