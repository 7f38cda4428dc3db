package layer

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// tcpListen is the LISTEN state as /proc/net/tcp writes it.
const tcpListen = "0A"

// Listening reports whether a TCP socket of this network namespace, which the program shares,
// listens on port. It is how the plugin learns that the program closed a listener: closes are
// not trapped, as stopping every close of every descriptor would cost each program a round trip
// to the supervisor for nothing.
func Listening(port uint16) (bool, error) {
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		found, err := listensIn(table, port)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a kernel without IPv6
		}
		if err != nil || found {
			return found, err
		}
	}
	return false, nil
}

// listensIn scans one of the kernel's socket tables. Its lines read
// "sl local_address rem_address st ...", the local address as hex IP:PORT.
func listensIn(table string, port uint16) (bool, error) {
	f, err := os.Open(table)
	if err != nil {
		return false, err
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	lines.Scan() // the header
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) < 4 {
			continue
		}
		if fields[3] != tcpListen {
			// The kernel lists the listening sockets first, then the others. Stopping here
			// spares it formatting every connection, which on a busy machine (tens of
			// thousands in TIME_WAIT) cost the plugin a tenth of a core at one read a second.
			break
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err == nil && uint16(p) == port {
			return true, nil
		}
	}
	if err := lines.Err(); err != nil {
		return false, fmt.Errorf("read %s: %w", table, err)
	}
	return false, nil
}
