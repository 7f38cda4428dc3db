package wire

import (
	"slices"
	"testing"
)

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name           string
		client, server []string
		want           []string
	}{
		{name: "both empty", want: nil},
		{name: "client empty", server: []string{"env"}, want: nil},
		{name: "server empty", client: []string{"env"}, want: nil},
		{name: "disjoint", client: []string{"env"}, server: []string{"dial-udp"}, want: nil},
		{name: "same", client: []string{"env", "dial-tcp"}, server: []string{"env", "dial-tcp"}, want: []string{"env", "dial-tcp"}},
		{name: "client order wins", client: []string{"dial-tcp", "env"}, server: []string{"env", "dial-tcp"}, want: []string{"dial-tcp", "env"}},
		{name: "subset", client: []string{"env", "dial-tcp", "dial-udp"}, server: []string{"dial-udp", "env"}, want: []string{"env", "dial-udp"}},
		{name: "client duplicates", client: []string{"env", "env", "dial-tcp", "env"}, server: []string{"env", "dial-tcp"}, want: []string{"env", "dial-tcp"}},
		{name: "server duplicates", client: []string{"env"}, server: []string{"env", "env"}, want: []string{"env"}},
		{name: "case matters", client: []string{"ENV"}, server: []string{"env"}, want: nil},
		{name: "empty name", client: []string{""}, server: []string{""}, want: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Negotiate(tt.client, tt.server)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Negotiate(%q, %q) = %q, want %q", tt.client, tt.server, got, tt.want)
			}
		})
	}
}
