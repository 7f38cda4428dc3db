package plugin

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// portChoice decides which of the program's listening ports are subscribed in the pod, and as
// which pod port: -p/--port-map LOCAL:REMOTE, --ports and --ignore-ports.
type portChoice struct {
	remoteOf map[uint16]uint16 // local port -> pod port
	only     []uint16          // when set, only these local ports
	ignore   []uint16
}

// newPortChoice parses the flags' values.
func newPortChoice(maps, only, ignore []string) (portChoice, error) {
	c := portChoice{remoteOf: map[uint16]uint16{}}
	for _, m := range maps {
		l, r, ok := strings.Cut(m, ":")
		local, err1 := parsePort(l)
		remote, err2 := parsePort(r)
		if !ok || err1 != nil || err2 != nil {
			return portChoice{}, fmt.Errorf("--port-map %q: want LOCAL:REMOTE, two ports from 1 to 65535", m)
		}
		c.remoteOf[local] = remote
	}
	var err error
	if c.only, err = parsePorts("--ports", only); err != nil {
		return portChoice{}, err
	}
	if c.ignore, err = parsePorts("--ignore-ports", ignore); err != nil {
		return portChoice{}, err
	}
	return c, nil
}

// remote returns the pod port for a local listening port, or false when it is not subscribed.
func (c portChoice) remote(local uint16) (uint16, bool) {
	if slices.Contains(c.ignore, local) || (len(c.only) > 0 && !slices.Contains(c.only, local)) {
		return 0, false
	}
	if r, ok := c.remoteOf[local]; ok {
		return r, true
	}
	return local, true
}

// parsePorts reads comma-separated ports from repeatable flag values.
func parsePorts(flag string, values []string) ([]uint16, error) {
	var ports []uint16
	for _, v := range values {
		for _, p := range strings.Split(v, ",") {
			port, err := parsePort(strings.TrimSpace(p))
			if err != nil {
				return nil, fmt.Errorf("%s %q: %w", flag, v, err)
			}
			ports = append(ports, port)
		}
	}
	return ports, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port from 1 to 65535", s)
	}
	return uint16(n), nil
}
