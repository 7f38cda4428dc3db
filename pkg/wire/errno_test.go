package wire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// refusedDial dials a loopback port that was just closed.
func refusedDial(t *testing.T) error {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err == nil {
		c.Close()
		t.Skipf("something listens on %s again", addr)
	}
	return err
}

// deadlineRead reads from a connection whose read deadline has passed.
func deadlineRead(t *testing.T) error {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if err := a.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err := a.Read(make([]byte, 1))
	return err
}

// expiredDial dials with a context whose deadline has passed.
func expiredDial(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:9")
	if err == nil {
		c.Close()
		t.Fatal("dial with an expired context succeeded")
	}
	return err
}

func cancelledDial(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:9")
	if err == nil {
		c.Close()
		t.Fatal("dial with a cancelled context succeeded")
	}
	return err
}

// nxdomainServer answers every DNS query on a loopback UDP socket with NXDOMAIN.
func nxdomainServer(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 12 {
				continue
			}
			resp := append([]byte(nil), buf[:n]...)
			resp[2] = 0x81                          // QR, RD
			resp[3] = 0x83                          // RA, RCODE 3 (NXDOMAIN)
			clear(resp[6:12])                       // no answers, authority or additional records
			resp = resp[:12+questionLen(buf[12:n])] // keep only the question
			_, _ = pc.WriteTo(resp, from)
		}
	}()
	return pc.LocalAddr().String()
}

// questionLen is the length of the first question in a DNS message body.
func questionLen(b []byte) int {
	i := 0
	for i < len(b) && b[i] != 0 {
		i += int(b[i]) + 1
	}
	return min(i+1+4, len(b)) // root label, type and class
}

func lookup(t *testing.T, dial func(ctx context.Context, network, address string) (net.Conn, error)) error {
	t.Helper()
	r := &net.Resolver{PreferGo: true, Dial: dial}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := r.LookupHost(ctx, "no-such-name.remocal.test.")
	if err == nil {
		t.Fatal("lookup of a name the server does not know succeeded")
	}
	return err
}

func TestErrnoOf(t *testing.T) {
	refused := refusedDial(t)
	nx := nxdomainServer(t)
	nxdomain := lookup(t, func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", nx)
	})
	if dnsErr, ok := errors.AsType[*net.DNSError](nxdomain); !ok || !dnsErr.IsNotFound {
		t.Fatalf("lookup through the NXDOMAIN server: %#v, want a not-found DNSError", nxdomain)
	}
	tests := []struct {
		name string
		err  error
		want uint32
	}{
		{name: "nil", err: nil, want: 0},
		{name: "refused loopback dial", err: refused, want: linuxECONNREFUSED},
		{name: "refused, wrapped", err: fmt.Errorf("dial upstream: %w", refused), want: linuxECONNREFUSED},
		{name: "bare errno", err: syscall.EHOSTUNREACH, want: linuxEHOSTUNREACH},
		{name: "op error", err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}, want: linuxENETUNREACH},
		{name: "errno timeout", err: os.NewSyscallError("connect", syscall.ETIMEDOUT), want: linuxETIMEDOUT},
		{name: "read deadline", err: deadlineRead(t), want: linuxETIMEDOUT},
		{name: "dial past its deadline", err: expiredDial(t), want: linuxETIMEDOUT},
		{name: "context deadline, wrapped", err: fmt.Errorf("x: %w", context.DeadlineExceeded), want: linuxETIMEDOUT},
		{name: "cancelled dial", err: cancelledDial(t), want: linuxECANCELED},
		{name: "nxdomain", err: nxdomain, want: linuxEHOSTUNREACH},
		{name: "dns server unreachable", err: lookup(t, func(context.Context, string, string) (net.Conn, error) {
			return nil, &net.OpError{Op: "dial", Net: "udp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
		}), want: linuxEHOSTUNREACH},
		{name: "dns timeout", err: &net.DNSError{Err: "i/o timeout", Name: "x", IsTimeout: true}, want: linuxETIMEDOUT},
		{name: "missing port", err: func() error { _, err := net.Dial("tcp", "127.0.0.1"); return err }(), want: linuxEINVAL},
		{name: "unknown network", err: func() error { _, err := net.Dial("carrier-pigeon", "127.0.0.1:1"); return err }(), want: linuxEINVAL},
		{name: "unrecognised", err: errors.New("something else"), want: linuxEIO},
		{name: "zero errno", err: syscall.Errno(0), want: linuxEIO},
		{name: "received dial error", err: DialReply{Errno: linuxEHOSTUNREACH, Reason: "no route"}.Err(), want: linuxEHOSTUNREACH},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ErrnoOf(tt.err); got != tt.want {
				t.Errorf("ErrnoOf(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

func TestDialReplyErr(t *testing.T) {
	if err := (DialReply{}).Err(); err != nil {
		t.Errorf("success reply: %v, want nil", err)
	}
	tests := []struct {
		name    string
		reply   DialReply
		is      syscall.Errno
		text    string
		timeout bool
	}{
		{name: "refused", reply: DialReply{Errno: linuxECONNREFUSED, Reason: "dial tcp 10.0.0.1:80: connect: connection refused"}, is: syscall.ECONNREFUSED, text: "dial tcp 10.0.0.1:80: connect: connection refused"},
		{name: "timed out without reason", reply: DialReply{Errno: linuxETIMEDOUT}, is: syscall.ETIMEDOUT, text: "connect from pod: " + syscall.ETIMEDOUT.Error(), timeout: true},
		{name: "net unreachable", reply: DialReply{Errno: linuxENETUNREACH, Reason: "r"}, is: syscall.ENETUNREACH, text: "r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fmt.Errorf("dial from the pod: %w", tt.reply.Err())
			if !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
			var de *DialError
			if !errors.As(err, &de) {
				t.Fatalf("no *DialError in %v", err)
			}
			if de.Error() != tt.text {
				t.Errorf("Error() = %q, want %q", de.Error(), tt.text)
			}
			if de.Timeout() != tt.timeout {
				t.Errorf("Timeout() = %v, want %v", de.Timeout(), tt.timeout)
			}
			if got := ErrnoOf(err); got != tt.reply.Errno {
				t.Errorf("ErrnoOf(Err()) = %d, want %d back", got, tt.reply.Errno)
			}
		})
	}
}

func TestDialReplyOf(t *testing.T) {
	if got := DialReplyOf(nil); got != (DialReply{}) {
		t.Errorf("DialReplyOf(nil) = %#v, want success", got)
	}
	refused := refusedDial(t)
	got := DialReplyOf(refused)
	if got.Errno != linuxECONNREFUSED || got.Reason != refused.Error() {
		t.Errorf("DialReplyOf(%v) = %#v", refused, got)
	}
	if !errors.Is(got.Err(), syscall.ECONNREFUSED) {
		t.Errorf("reply for a refused dial does not read back as ECONNREFUSED: %v", got.Err())
	}
}
