package lane

import (
	"io"
	"net"
)

// copyBuffer is what WriteTo moves at a time where it cannot splice: larger than io.Copy's
// 32 KiB, for fewer system calls on a bulk transfer.
const copyBuffer = 256 << 10

// WriteTo copies the peer's bytes to w until the peer ends its direction, across connections
// as Read does. Where the lane's connection and w are both TCP sockets (the sidecar's end of a
// port-forward lane, relayed to its destination), the bytes move with splice(2) and never
// enter this process.
func (l *Lane) WriteTo(w io.Writer) (int64, error) {
	dst, _ := w.(*net.TCPConn)
	var pipe *splicePipe
	defer func() {
		if pipe != nil {
			pipe.close()
		}
	}()
	var buf []byte
	var total int64
	noPipe := false
	for {
		conn, gen, err := l.readable()
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		if _, ok := conn.(*net.TCPConn); ok && dst != nil && pipe == nil && !noPipe {
			var err error
			pipe, err = newSplicePipe()
			noPipe = err != nil // the copy below does without
		}
		if src, ok := conn.(*net.TCPConn); ok && dst != nil && pipe != nil {
			n, rerr := pipe.fill(src, copyBuffer)
			l.readDone(gen, uint64(n), rerr)
			if n > 0 {
				if err := pipe.drain(dst, n); err != nil {
					return total, err
				}
				total += int64(n)
			}
			continue
		}
		if buf == nil {
			buf = make([]byte, copyBuffer)
		}
		n, rerr := conn.Read(buf)
		l.readDone(gen, uint64(n), rerr)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return total, err
			}
			total += int64(n)
		}
	}
}
