package main

import (
	"bytes"
	"slices"
	"testing"
)

func TestWriteInterfaces(t *testing.T) {
	tests := []struct {
		name string
		ifs  []iface
		want string
	}{
		{"none", nil, ""},
		{"no addresses", []iface{{name: "tunl0"}}, "tunl0\n"},
		{
			"pod",
			[]iface{
				{name: "lo", addrs: []string{"127.0.0.1/8", "::1/128"}},
				{name: "eth0", addrs: []string{"10.244.0.5/24"}},
			},
			"lo 127.0.0.1/8 ::1/128\neth0 10.244.0.5/24\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := writeInterfaces(&buf, tt.ifs); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestListInterfacesHasLoopback(t *testing.T) {
	ifs, err := listInterfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifs {
		if slices.Contains(ifc.addrs, "127.0.0.1/8") {
			return
		}
	}
	t.Errorf("no interface has 127.0.0.1/8: %+v", ifs)
}
