package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// progressEvery is how often stream reports what it received, so that a test can act during
// the transfer.
const progressEvery = 16 << 20

// stream sends size random bytes over one connection to an echo server at addr while reading
// the echo back. The connection is the one the program opened: any error on it, which a cut
// link that was not hidden from the program would cause, fails the mode.
func stream(addr string, size int64) error {
	conn, err := net.DialTimeout("tcp", addr, 20*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Minute))
	sent := sha256.New()
	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.MultiWriter(conn, sent), io.LimitReader(rand.Reader, size))
		errc <- err
	}()
	got := sha256.New()
	var n int64
	buf := make([]byte, 256<<10)
	for n < size {
		m, err := conn.Read(buf[:min(int64(len(buf)), size-n)])
		got.Write(buf[:m])
		if (n+int64(m))/progressEvery > n/progressEvery {
			fmt.Printf("received %d MiB\n", (n+int64(m))>>20)
		}
		n += int64(m)
		if err != nil {
			return fmt.Errorf("read after %d of %d bytes: %w", n, size, err)
		}
	}
	if err := <-errc; err != nil {
		return fmt.Errorf("write: %w", err)
	}
	fmt.Printf("sent sha256 %x\nreceived sha256 %x\nconnection never closed\n", sent.Sum(nil), got.Sum(nil))
	return nil
}

// manyFDs runs n concurrent echo round trips between two lines of stdin, and reports the
// parent's (the plugin's) descriptors before and after; the test counts the sidecar's
// meanwhile.
func manyFDs(addr string, n int) error {
	stdin := bufio.NewReader(os.Stdin)
	before := parentFDs()
	fmt.Println("ready")
	if _, err := stdin.ReadString('\n'); err != nil {
		return err
	}
	if err := many(addr, n); err != nil {
		return err
	}
	after := parentFDs()
	for deadline := time.Now().Add(10 * time.Second); after > before && time.Now().Before(deadline); after = parentFDs() {
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Printf("plugin fds before %d after %d\n", before, after)
	_, err := stdin.ReadString('\n')
	return err
}
