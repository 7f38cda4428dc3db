package e2e

import (
	"net/netip"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/util/rand"
)

// dropUDPTo makes this machine drop every UDP datagram it sends to ip (a pod of the local test
// cluster), as if the network between the plugin and the pod had gone: the direct QUIC link
// carries nothing more. The cleanup, or the returned function, restores it.
func dropUDPTo(t *testing.T, ip netip.Addr) (restore func()) {
	t.Helper()
	if !testNetwork.Contains(ip) {
		t.Fatalf("%s is not on the test network", ip)
	}
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	table := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: "remocal_e2e_" + rand.String(6)})
	chain := c.AddChain(&nftables.Chain{
		Name: "output", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter,
	})
	c.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}, // daddr
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip.AsSlice()},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_UDP}},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	if err := c.Flush(); err != nil {
		t.Fatalf("drop UDP to %s: %v", ip, err)
	}
	done := false
	restore = func() {
		if done {
			return
		}
		done = true
		c.DelTable(table)
		if err := c.Flush(); err != nil {
			t.Errorf("restore UDP to %s: %v", ip, err)
		}
	}
	t.Cleanup(restore)
	return restore
}
