package plugin

import "testing"

func TestParseForward(t *testing.T) {
	tests := []struct {
		in      string
		want    forward
		wantErr bool
	}{
		{in: "8080:orders.shop.svc.cluster.local:80", want: forward{network: "tcp", listen: "127.0.0.1:8080", remote: "orders.shop.svc.cluster.local:80"}},
		{in: "0.0.0.0:9000:127.0.0.1:9000", want: forward{network: "tcp", listen: "0.0.0.0:9000", remote: "127.0.0.1:9000"}},
		{in: "0:[fd00::1]:53/udp", want: forward{network: "udp", listen: "127.0.0.1:0", remote: "[fd00::1]:53"}},
		{in: "[::1]:8080:svc:80/tcp", want: forward{network: "tcp", listen: "[::1]:8080", remote: "svc:80"}},
		{in: "5353:kube-dns:53/sctp", wantErr: true},
		{in: "8080", wantErr: true},
		{in: "8080:svc", wantErr: true},
		{in: "x:svc:80", wantErr: true},
		{in: "8080:svc:99999", wantErr: true},
		{in: "8080::80", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseForward(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseReverse(t *testing.T) {
	got, err := parseReverse("8080:3000")
	if err != nil || got.podPort != 8080 || got.local.String() != "127.0.0.1:3000" {
		t.Fatalf("parseReverse(8080:3000) = %+v, %v", got, err)
	}
	for _, bad := range []string{"8080", "8080:", ":3000", "0:3000", "8080:70000", "a:b", "8080:3000:1"} {
		if _, err := parseReverse(bad); err == nil {
			t.Errorf("parseReverse(%q) accepted", bad)
		}
	}
}
