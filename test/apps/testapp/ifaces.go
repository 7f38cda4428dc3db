package main

import (
	"fmt"
	"io"
	"net"
	"strings"
)

// iface is one network interface as the ifaces mode prints it.
type iface struct {
	name  string
	addrs []string // CIDR notation, e.g. "10.244.0.5/24"
}

// listInterfaces reads the interfaces of the network namespace the process
// runs in; in an ephemeral container that is the pod's.
func listInterfaces() ([]iface, error) {
	nifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	ifs := make([]iface, 0, len(nifs))
	for _, ni := range nifs {
		addrs, err := ni.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", ni.Name, err)
		}
		ifc := iface{name: ni.Name}
		for _, a := range addrs {
			ifc.addrs = append(ifc.addrs, a.String())
		}
		ifs = append(ifs, ifc)
	}
	return ifs, nil
}

// writeInterfaces prints one line per interface: its name, then its
// addresses separated by spaces.
func writeInterfaces(w io.Writer, ifs []iface) error {
	for _, ifc := range ifs {
		line := ifc.name
		if len(ifc.addrs) > 0 {
			line += " " + strings.Join(ifc.addrs, " ")
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return fmt.Errorf("write interfaces: %w", err)
		}
	}
	return nil
}
