package lane

import (
	"io"
	"net"
	"sync"
)

// copyBuffer is what WriteTo and ReadFrom move at a time where they cannot splice: larger than
// io.Copy's 32 KiB, for fewer system calls on a bulk transfer.
const copyBuffer = 256 << 10

// copyBuffers keeps the buffers of WriteTo and ReadFrom between lanes: a program that opens a
// connection per request would otherwise have each lane allocate (and the collector clear)
// copyBuffer bytes each way, which measured as the sidecar's largest cost after the connect
// itself at a thousand connections a second.
var copyBuffers = sync.Pool{New: func() any {
	b := make([]byte, copyBuffer)
	return &b
}}

// ReadFrom writes what r has to the lane until r's end of stream (not passed on: CloseWrite
// does that), in reads of up to copyBuffer bytes.
func (l *Lane) ReadFrom(r io.Reader) (int64, error) {
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	// Hidden from io.CopyBuffer: l's ReadFrom (this), and r's WriteTo, which would copy
	// through a buffer of its own.
	return io.CopyBuffer(onlyWriter{l}, onlyReader{r}, *buf)
}

// onlyWriter hides Lane's other methods from io.CopyBuffer.
type onlyWriter struct{ io.Writer }

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
	var buf *[]byte
	defer func() {
		if buf != nil {
			copyBuffers.Put(buf)
		}
	}()
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
			buf = copyBuffers.Get().(*[]byte)
		}
		n, rerr := conn.Read(*buf)
		l.readDone(gen, uint64(n), rerr)
		if n > 0 {
			if _, err := w.Write((*buf)[:n]); err != nil {
				return total, err
			}
			total += int64(n)
		}
	}
}
