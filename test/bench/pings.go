package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// pingsArg makes this binary the small-request client, run both under the layer and directly.
const pingsArg = "pings"

// ping is the request; the pod's TCP echo server sends it back, which is the whole reply.
var ping = []byte("PING\r\n")

// pings sends small requests to a TCP echo server from one thread with an epoll loop over
// non-blocking sockets, as redis-benchmark does: a connect that blocks (rather than returning
// EINPROGRESS) stalls every connection in flight, which is what a multi-threaded loader would
// hide. With -new each request has a connection of its own (connect, send, read the reply,
// close) and its latency runs from connect to the reply's first byte; without it each of the
// -c connections is kept and sends its next request once the last is answered. It prints
// "operations/s p50-ms p99-ms".
func pings(args []string) error {
	fs := flag.NewFlagSet(pingsArg, flag.ContinueOnError)
	conc := fs.Int("c", 1, "connections in flight")
	fresh := fs.Bool("new", false, "a new connection for each request")
	dur := fs.Duration("d", 3*time.Second, "duration at most")
	count := fs.Int("n", 10000, "requests at most (with -new, bounds the client ports left in TIME_WAIT)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: pings [-c N] [-new] [-d DURATION] [-n COUNT] HOST:PORT")
	}
	// The name is resolved once, before the measurement (under the layer, through the pod's DNS).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sa, family, err := resolve(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	l, err := newPingLoop(sa, family, *fresh)
	if err != nil {
		return err
	}
	defer l.close()
	lat, took, err := l.run(*conc, *count, *dur)
	if err != nil {
		return err
	}
	if len(lat) == 0 {
		return errors.New("no request was answered")
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	fmt.Printf("%.1f %.3f %.3f\n", float64(len(lat))/took.Seconds(), pct(0.50), pct(0.99))
	return nil
}

// resolve turns HOST:PORT into a socket address.
func resolve(ctx context.Context, hostport string) (unix.Sockaddr, int, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, 0, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, 0, fmt.Errorf("port %q: %w", portStr, err)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return nil, 0, fmt.Errorf("resolve %s: %w", host, err)
	}
	ip := addrs[0].Unmap()
	if ip.Is4() {
		return &unix.SockaddrInet4{Port: port, Addr: ip.As4()}, unix.AF_INET, nil
	}
	return &unix.SockaddrInet6{Port: port, Addr: ip.As16()}, unix.AF_INET6, nil
}

// pingConn is one connection of the loop: when its request (or its connect) began, and how
// much of the reply has come.
type pingConn struct {
	fd         int
	begin      time.Time
	connecting bool
	got        int
	firstByte  time.Duration
}

type pingLoop struct {
	sa     unix.Sockaddr
	family int
	fresh  bool
	epfd   int
	conns  map[int]*pingConn
}

func newPingLoop(sa unix.Sockaddr, family int, fresh bool) (*pingLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	return &pingLoop{sa: sa, family: family, fresh: fresh, epfd: epfd, conns: map[int]*pingConn{}}, nil
}

func (l *pingLoop) close() {
	for fd := range l.conns {
		_ = unix.Close(fd)
	}
	_ = unix.Close(l.epfd)
}

// run keeps conc requests in flight until count are answered or dur has passed, and returns
// each answered request's latency and the time they took in all.
func (l *pingLoop) run(conc, count int, dur time.Duration) ([]time.Duration, time.Duration, error) {
	var lat []time.Duration
	begin := time.Now()
	deadline := begin.Add(dur)
	for range conc {
		if err := l.open(); err != nil {
			return nil, 0, err
		}
	}
	events := make([]unix.EpollEvent, 64)
	lastProgress := time.Now()
	for len(lat) < count && time.Now().Before(deadline) {
		n, err := unix.EpollWait(l.epfd, events, 100)
		if errors.Is(err, unix.EINTR) {
			continue // the Go runtime's own signals (preemption)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("epoll_wait: %w", err)
		}
		if n == 0 && time.Since(lastProgress) > 10*time.Second {
			return nil, 0, fmt.Errorf("no progress in 10 s with %d connections in flight", len(l.conns))
		}
		for _, ev := range events[:n] {
			c := l.conns[int(ev.Fd)]
			if c == nil {
				continue
			}
			took, done, err := l.step(c)
			if err != nil {
				return nil, 0, err
			}
			if !done {
				continue
			}
			lat = append(lat, took)
			lastProgress = time.Now()
			if !l.fresh {
				c.begin = time.Now()
				if err := l.send(c); err != nil {
					return nil, 0, err
				}
				continue
			}
			l.drop(c)
			if err := l.open(); err != nil {
				return nil, 0, err
			}
		}
	}
	return lat, time.Since(begin), nil
}

// open starts a connection and, once it is connected, its first request.
func (l *pingLoop) open() error {
	fd, err := unix.Socket(l.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	c := &pingConn{fd: fd, begin: time.Now(), connecting: true}
	if err := unix.Connect(fd, l.sa); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		_ = unix.Close(fd)
		return fmt.Errorf("connect: %w", err)
	}
	// Writable once connected, whether connect returned 0 or EINPROGRESS.
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLOUT, Fd: int32(fd)}); err != nil {
		_ = unix.Close(fd)
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	l.conns[fd] = c
	return nil
}

// step goes on with c, which the loop says is ready. It reports whether c's request is
// answered, and then its latency.
func (l *pingLoop) step(c *pingConn) (time.Duration, bool, error) {
	if c.connecting {
		soerr, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil && soerr != 0 {
			err = unix.Errno(soerr)
		}
		if err != nil {
			return 0, false, fmt.Errorf("connect: %w", err)
		}
		c.connecting = false
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(c.fd)}); err != nil {
			return 0, false, fmt.Errorf("epoll_ctl: %w", err)
		}
		// A new connection's latency runs from its connect; a kept one's from each send.
		if !l.fresh {
			c.begin = time.Now()
		}
		return 0, false, l.send(c)
	}
	var buf [64]byte
	for {
		n, err := unix.Read(c.fd, buf[:])
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			return 0, false, fmt.Errorf("the server closed the connection after %d bytes of the reply", c.got)
		}
		if c.got == 0 {
			c.firstByte = time.Since(c.begin)
		}
		c.got += n
		if c.got >= len(ping) {
			if l.fresh {
				return c.firstByte, true, nil
			}
			return time.Since(c.begin), true, nil
		}
	}
}

// send writes the request on c, whose socket buffer holds it whole: it is a few bytes, on a
// connection with nothing else in flight.
func (l *pingLoop) send(c *pingConn) error {
	c.got = 0
	n, err := unix.Write(c.fd, ping)
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if n != len(ping) {
		return fmt.Errorf("write: %d of %d bytes", n, len(ping))
	}
	return nil
}

// drop closes c; closing the descriptor also takes it out of the epoll set.
func (l *pingLoop) drop(c *pingConn) {
	delete(l.conns, c.fd)
	_ = unix.Close(c.fd)
}
