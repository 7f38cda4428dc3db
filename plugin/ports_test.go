package plugin

import "testing"

func TestPortChoice(t *testing.T) {
	c, err := newPortChoice([]string{"9090:8080"}, nil, []string{"6060,6061"})
	if err != nil {
		t.Fatal(err)
	}
	for local, want := range map[uint16]int{9090: 8080, 3000: 3000, 6060: -1, 6061: -1} {
		got, ok := c.remote(local)
		if (want < 0) == ok || (ok && int(got) != want) {
			t.Errorf("remote(%d) = %d, %v; want %d", local, got, ok, want)
		}
	}
	only, err := newPortChoice(nil, []string{"8080"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := only.remote(9090); ok {
		t.Error("--ports 8080 subscribed 9090")
	}
	if r, ok := only.remote(8080); !ok || r != 8080 {
		t.Errorf("--ports 8080: remote(8080) = %d, %v", r, ok)
	}
	for _, bad := range [][]string{{"9090"}, {"0:80"}, {"80:70000"}, {"a:b"}} {
		if _, err := newPortChoice(bad, nil, nil); err == nil {
			t.Errorf("--port-map %v accepted", bad)
		}
	}
	if _, err := newPortChoice(nil, []string{"80,x"}, nil); err == nil {
		t.Error("--ports 80,x accepted")
	}
}
