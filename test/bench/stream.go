package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// streamArg makes this binary the bulk echo client, run both under the layer and directly.
const streamArg = "stream"

// stream connects to a TCP echo server, prints "go", echoes -bytes through the connection
// (writing and reading at once) and prints "done MiB/s CPU-s": the payload's rate one way and
// this process's own CPU time over the transfer. The "go" line lets the caller read the other
// processes' CPU times over the same span.
func stream(args []string) error {
	fs := flag.NewFlagSet(streamArg, flag.ContinueOnError)
	size := fs.Int64("bytes", 256<<20, "bytes echoed each way")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: stream [-bytes N] HOST:PORT")
	}
	conn, err := net.DialTimeout("tcp", fs.Arg(0), 10*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	// One random block sent again and again: nothing on the way compresses, and generating
	// 256 MiB would cost this process more CPU than the bytes' copy does.
	block := make([]byte, 64<<10)
	_, _ = rand.Read(block)
	cpu0, err := selfCPU()
	if err != nil {
		return err
	}
	fmt.Println("go")
	begin := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- writeRepeated(conn, block, *size) }()
	if _, err := io.CopyN(io.Discard, conn, *size); err != nil {
		return fmt.Errorf("read the echo: %w", err)
	}
	if err := <-errc; err != nil {
		return fmt.Errorf("write: %w", err)
	}
	took := time.Since(begin)
	cpu1, err := selfCPU()
	if err != nil {
		return err
	}
	fmt.Printf("done %.2f %.3f\n", float64(*size)/(1<<20)/took.Seconds(), cpu1-cpu0)
	return nil
}

func writeRepeated(w io.Writer, block []byte, size int64) error {
	for size > 0 {
		n := min(int64(len(block)), size)
		if _, err := w.Write(block[:n]); err != nil {
			return err
		}
		size -= n
	}
	return nil
}

// selfCPU is this process's CPU time so far in seconds.
func selfCPU() (float64, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(), nil
}
